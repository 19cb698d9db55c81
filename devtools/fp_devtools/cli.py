"""`fraudpipe dev`: real servers (Kafka, Kubernetes control plane, Prometheus) on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Start, inspect and stop the real servers the product talks to.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where env.json, data and logs live.")]


@app.command("up")
def up_cmd(
    with_: Annotated[
        str, typer.Option("--with", help="Comma-separated: kafka,kube,prometheus.")
    ] = "kafka,kube,prometheus",
    state_dir: StateDir = Path(".fraudpipe/dev"),
) -> None:
    """Start the chosen servers, wait until each is healthy, write DIR/env.json and return."""
    from fp_devtools import servers
    from fp_devtools.cache import MissingPrerequisite
    from fp_devtools.process import ServerFailed

    chosen = [s.strip() for s in with_.split(",") if s.strip()]
    try:
        with console.status(f"starting {', '.join(chosen)} ..."):
            env = servers.up(chosen, state_dir)
    except (MissingPrerequisite, ServerFailed, ValueError) as exc:
        console.print(f"[red]fraudpipe dev up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for s in chosen:
        console.print(f"[green]{s}[/green] ready: {json.dumps(env[s], default=str)[:200]}")
    console.print(f"env: {servers.env_path(Path(state_dir).resolve())}")
    print(json.dumps(env, indent=2))


@app.command("prepare")
def prepare_cmd(
    with_: Annotated[
        str, typer.Option("--with", help="Comma-separated: kafka,kube,prometheus.")
    ] = "kafka,kube,prometheus",
) -> None:
    """Download and build what the servers need (into ~/.cache/fraudpipeline) without starting them."""
    import time

    from fp_devtools import servers
    from fp_devtools.cache import MissingPrerequisite
    from fp_devtools.process import ServerFailed

    t0 = time.monotonic()
    try:
        done = servers.prepare([s.strip() for s in with_.split(",") if s.strip()])
    except (MissingPrerequisite, ServerFailed, ValueError) as exc:
        console.print(f"[red]fraudpipe dev prepare failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    for name, what in done.items():
        console.print(f"  {name}: {what}")
    console.print(f"prepared in {time.monotonic() - t0:.1f} s")


@app.command("down")
def down_cmd(state_dir: StateDir = Path(".fraudpipe/dev")) -> None:
    """Stop exactly the processes that `up` started (as recorded in env.json)."""
    from fp_devtools import servers

    stopped = servers.down(state_dir)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command("status")
def status_cmd(
    state_dir: StateDir = Path(".fraudpipe/dev"), as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Tell what runs."""
    from fp_devtools import servers

    st = servers.status(state_dir)
    if as_json:
        print(json.dumps(st, indent=2))
        return
    if not st:
        console.print(f"nothing recorded in {servers.env_path(Path(state_dir).resolve())}")
        return
    table = Table("process", "server", "pid", "state", "log")
    for name, s in st.items():
        table.add_row(
            name,
            s["server"],
            str(s["pid"]),
            "[green]running[/green]" if s["alive"] else "[red]stopped[/red]",
            s["log"] or "",
        )
    Console().print(table)
    if not all(s["alive"] for s in st.values()):
        raise typer.Exit(3)
