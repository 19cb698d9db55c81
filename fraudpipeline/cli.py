"""`fraudpipe`: the one entry point for people.

Subcommands live beside the code they drive and are found through entry points (pyproject.toml):
group `fraudpipe.commands` for top-level commands, `fraudpipe.bench` for `fraudpipe bench NAME`.
An entry point whose package is not installed (an image carries only its own component) is left
out. Heavy libraries (pyflink, bentoml, kopf) are imported inside the commands so that
`fraudpipe --help` stays fast.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

COMMANDS_GROUP = "fraudpipe.commands"
BENCH_GROUP = "fraudpipe.bench"

app = typer.Typer(
    name="fraudpipe",
    help="Real-time card-fraud detection pipelines: operator, local mode and dev servers.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks: measured figures as JSON on stdout.", no_args_is_help=True)


def _load(ep):
    """The entry point's object, or None when its package is not in this installation."""
    try:
        return ep.load()
    except ModuleNotFoundError as exc:
        top = ep.value.split(":", 1)[0].split(".", 1)[0]
        if exc.name and exc.name.split(".", 1)[0] == top:
            return None  # that component is not installed here (e.g. dev tools in an image)
        raise


def _register(target: typer.Typer, group: str) -> None:
    for ep in sorted(entry_points(group=group), key=lambda e: e.name):
        obj = _load(ep)
        if obj is None:
            continue
        if isinstance(obj, typer.Typer):
            target.add_typer(obj, name=ep.name)
        else:
            target.command(ep.name)(obj)


_register(app, COMMANDS_GROUP)
_register(bench_app, BENCH_GROUP)
if bench_app.registered_commands or bench_app.registered_groups:
    app.add_typer(bench_app, name="bench")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
