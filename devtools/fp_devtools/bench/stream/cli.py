"""`fraudpipe bench stream`: the streaming job end to end, measured figures as JSON."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            help="Run only this scenario (repeatable): embedded@max, remote@max, embedded@5000, seed-style@max."
        ),
    ] = None,
    first_day: Annotated[str, typer.Option("--from", help="First measured day (the handbook's test week).")] = (
        "2018-08-08"
    ),
    days: Annotated[int, typer.Option(min=1, help="Measured days.")] = 7,
    warmup_days: Annotated[
        int,
        typer.Option(
            min=1,
            help="Days replayed first (flat out) and left out of the figures (the JVMs compile meanwhile).",
        ),
    ] = 3,
    checkpoint_interval: Annotated[
        str, typer.Option(help="The job's checkpoint interval: committed alerts wait for it.")
    ] = "5s",
    designs: Annotated[
        bool,
        typer.Option(
            help="Also measure the other designs: split layout at parallelism 1 and 2, batches of 64 and 1024."
        ),
    ] = False,
    retrain: Annotated[bool, typer.Option(help="Train the benchmark's model again.")] = False,
) -> None:
    """Transactions/s end to end, decision and committed-alert latency p50/p99, for embedded and remote
    scoring, at full speed and at 5,000/s, and for a seed-style consumer (one HTTP call per transaction)."""
    from rich.console import Console

    from fp_devtools.bench.stream.runner import run

    err = Console(stderr=True)

    def say(message: str) -> None:
        err.print(f"[dim]bench stream:[/dim] {message}", highlight=False)

    try:
        result = run(only, first_day, days, warmup_days, checkpoint_interval, designs, retrain, say)
    except RuntimeError as exc:
        err.print(f"[red]bench stream failed:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(title="fraudpipe bench stream")
    for col in ("scenario", "tx/s", "decision p50/p99 ms", "alert p50/p99 ms", "in", "accounted"):
        table.add_column(col)
    for r in result["results"]:
        table.add_row(
            r["name"],
            f"{r['rows_per_s']:,.0f}",
            f"{r['decision_p50_ms']} / {r['decision_p99_ms']}",
            f"{r['alert_p50_ms']} / {r['alert_p99_ms']}",
            str(r["transactions_in"]),
            str(r["accounted"]),
        )
    Console().print(table)
