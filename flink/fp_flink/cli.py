"""`fraudpipe stream`: the streaming job on this machine."""

from __future__ import annotations

import typer

app = typer.Typer(help="The streaming job (PyFlink) on this machine.", no_args_is_help=True)


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def run_cmd(ctx: typer.Context) -> None:
    """Run the job in a local Flink mini-cluster: the cluster's job arguments plus --state-dir DIR (see --help)."""
    from fp_flink.local import main

    raise typer.Exit(main(list(ctx.args)))
