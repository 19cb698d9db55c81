"""`fraudpipe`: the one entry point for people.

Subcommands live beside the code they drive; this module only wires them together. Heavy
libraries (pyflink, bentoml, kopf) are imported inside the commands so that `fraudpipe --help`
stays fast.
"""

from __future__ import annotations

import typer

from fraudpipeline.dev.cli import app as dev_app

app = typer.Typer(
    name="fraudpipe",
    help="Real-time card-fraud detection pipelines: operator, local mode and dev servers.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(dev_app, name="dev")

bench_app = typer.Typer(help="Benchmarks: measured figures as JSON on stdout.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _register_optional() -> None:
    """Register subcommands whose modules exist (each component adds its own)."""
    import importlib

    for module, attr, target, name in (
        ("fp_operator.cli", "app", app, "operator"),
        ("fp_operator.bench", "command", bench_app, "operator"),
        ("fp_serving.bench", "command", bench_app, "serving"),
        ("fraudpipeline.training.cli", "command", app, "train"),
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # component not written yet
            raise
        obj = getattr(mod, attr)
        if isinstance(obj, typer.Typer):
            target.add_typer(obj, name=name)
        else:
            target.command(name)(obj)


_register_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
