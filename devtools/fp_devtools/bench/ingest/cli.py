"""`fraudpipe bench ingest`: records/s and latency of the ingest API against a real broker, with a
plain Kafka producer (no HTTP) as the ceiling, in one run."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    duration: Annotated[float, typer.Option(min=1.0, max=60.0, help="Seconds of load per scenario (8).")] = 8.0,
    connections: Annotated[
        int, typer.Option(min=1, max=256, help="Connections of the flat-out single-record runs.")
    ] = 32,
    workers: Annotated[int, typer.Option(min=1, max=8, help="Worker processes of the service (--workers).")] = 1,
    only: Annotated[
        list[str] | None, typer.Option(help="Run only this scenario (repeatable), e.g. bridge-single@1000.")
    ] = None,
) -> None:
    """Single-record and 100-record requests at a fixed rate and flat out, through the bridge API and
    /v1/transactions, and a plain confluent-kafka producer; records/s and p50/p95/p99 latency."""
    from rich.console import Console

    from fp_devtools.bench.ingest.runner import run

    err = Console(stderr=True)

    def say(message: str) -> None:
        err.print(f"[dim]bench ingest:[/dim] {message}", highlight=False)

    with err.status("benchmarking the ingest API", spinner="dots"):
        try:
            result = run(duration=duration, connections=connections, workers=workers, only=only, say=say)
        except RuntimeError as exc:
            err.print(f"[red]bench ingest failed:[/red] {exc}")
            raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    from rich.console import Console as Out
    from rich.table import Table

    table = Table(title="fraudpipe bench ingest")
    for col in ("scenario", "records/s", "req/s", "p50 ms", "p99 ms", "errors", "service cores", "broker cores"):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for r in result["results"]:
        table.add_row(
            r["name"],
            f"{r['records_per_s']:,.0f}",
            f"{r['requests_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            str(sum(r["errors"].values()) if r["errors"] else 0),
            str(r["cpu"]["service_cores"]),
            str(r["cpu"]["broker_cores"]),
        )
    out = Out()
    out.print(table)
    for name, t in result["targets"].items():
        out.print(f"{'met   ' if t['met'] else 'MISSED'}  {name}: {t}")
    for warning in result["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}")
