"""`fraudpipe bench serving`: throughput and latency of the scoring service against a baseline.

Heavy imports (bentoml, xgboost) happen inside the command so `fraudpipe --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    duration: Annotated[
        float, typer.Option(min=1.0, max=60.0, help="Seconds of load per scenario (5 scenarios).")
    ] = 8.0,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Service worker processes (FRAUDPIPE_WORKERS).")] = 1,
    connections: Annotated[
        int, typer.Option(min=1, max=256, help="Connections for the flat-out single-row runs.")
    ] = 16,
    model_tag: Annotated[
        str | None,
        typer.Option(help="Serve this model from $BENTOML_HOME (default: a synthetic stand-in)."),
    ] = None,
    profile: Annotated[
        bool, typer.Option(help="Sample the service worker with py-spy (if on PATH) in the flat-out runs.")
    ] = False,
) -> None:
    """Score single rows at 500/s and flat out, 256-row batches flat out, and the same single
    rows on a seed-style FastAPI + XGBoost baseline; report rows/s and p50/p95/p99 latency."""
    from rich.console import Console

    from fp_devtools.bench.serving.runner import run

    err = Console(stderr=True)

    def say(message: str) -> None:
        err.print(f"[dim]bench serving:[/dim] {message}", highlight=False)

    with err.status("benchmarking the scoring service", spinner="dots"):
        try:
            result = run(
                duration=duration,
                workers=workers,
                connections=connections,
                model_tag=model_tag,
                profile=profile,
                say=say,
            )
        except RuntimeError as exc:
            err.print(f"[red]bench serving failed:[/red] {exc}")
            raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    _print_table(result)


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fraudpipe bench serving" + (" (synthetic model)" if result["model"]["synthetic"] else ""))
    for col in ("scenario", "rows/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server cores"):
        table.add_column(col, justify="right" if col != "scenario" else "left")
    for r in result["results"]:
        table.add_row(
            r["name"],
            f"{r['rows_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(sum(r["errors"].values()) if r["errors"] else 0),
            str(r["cpu"]["server_cores"]),
        )
    console = Console()
    console.print(table)
    for name, t in result["targets"].items():
        console.print(f"{'met ' if t['met'] else 'MISSED'}  {name}: {t}")
