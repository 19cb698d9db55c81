"""`fraudpipe replay`: stream handbook (or simulated) transactions and their labels into a pipeline."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer


def _rate(value: str) -> float | None:
    if value == "max":
        return None
    try:
        rate = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give transactions per second (e.g. 5000) or 'max'") from None
    if rate <= 0:
        raise typer.BadParameter("the rate must be positive, or 'max'")
    return rate


def _topics(pipeline_file: Path | None, transactions_topic: str | None, labels_topic: str | None) -> dict[str, str]:
    topics: dict[str, str] = {}
    if pipeline_file is not None:
        from fraudpipeline.spec import SpecError, load_pipeline

        try:
            p = load_pipeline(pipeline_file)
        except SpecError as exc:
            raise typer.BadParameter(str(exc), param_hint="-f") from None
        topics = {"transactions": p.topic_name("transactions"), "labels": p.topic_name("labels")}
    if transactions_topic:
        topics["transactions"] = transactions_topic
    if labels_topic:
        topics["labels"] = labels_topic
    missing = [r for r in ("transactions", "labels") if r not in topics]
    if missing:
        raise typer.BadParameter(
            f"no topic for {', '.join(missing)}: pass -f FRAUDPIPELINE.yaml or --{missing[0]}-topic NAME"
        )
    return topics


def command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="Transaction parquet file(s). Default: $FRAUDPIPE_DATA, else the Fraud Detection "
            "Handbook's data set, regenerated into the cache on first use (`fraudpipe data handbook`).",
        ),
    ] = None,
    start: Annotated[
        str,
        typer.Option("--from", help="First day to replay (YYYY-MM-DD); the handbook's test week starts 2018-08-08."),
    ] = "2018-08-08",
    days: Annotated[int, typer.Option(help="Days of transactions to replay.", min=1)] = 7,
    rate: Annotated[str, typer.Option(help="Transactions per second, or 'max' (labels ride along).")] = "max",
    pipeline_file: Annotated[
        Path | None,
        typer.Option("-f", "--file", help="FraudPipeline YAML: its transactions and labels topic names."),
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka host:port. Default: the broker of `fraudpipe dev up` (.fraudpipe/dev/env.json)."),
    ] = None,
    transactions_topic: Annotated[str | None, typer.Option(help="Overrides the file's topic.")] = None,
    labels_topic: Annotated[str | None, typer.Option(help="Overrides the file's topic.")] = None,
    label_delay_days: Annotated[
        float,
        typer.Option(help="Event-time delay between a transaction and its label (the handbook's is 7 days).", min=0),
    ] = 7.0,
    labels: Annotated[str, typer.Option(help="Labels to send: fraud (confirmed frauds only), all, none.")] = "fraud",
    limit: Annotated[int | None, typer.Option(help="Stop after this many transactions.", min=1)] = None,
    via: Annotated[
        tuple[str, str] | None,
        typer.Option(
            "--via",
            metavar="http URL",
            help="Send over HTTP through the ingest API (`fraudpipe ingest run`) or a "
            "Strimzi Kafka Bridge at URL, e.g. --via http http://127.0.0.1:8080, instead of straight to Kafka.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the final count as JSON on stdout.")] = False,
) -> None:
    """Stream transactions (keyed by card) and their labels (keyed by terminal, later in event time)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fraudpipeline.data import DataSetError, resolve_transactions
    from fraudpipeline.replay.events import replay_events
    from fraudpipeline.replay.kafka import DeliveryFailed, KafkaSink
    from fraudpipeline.replay.runner import replay

    err = Console(stderr=True)
    if labels not in ("fraud", "all", "none"):
        raise typer.BadParameter(f"{labels!r}: choose fraud, all or none", param_hint="--labels")
    try:
        first = date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter(
            f"{start!r} is not a date; use YYYY-MM-DD, e.g. 2018-08-08", param_hint="--from"
        ) from None
    pace = _rate(rate)
    topics = _topics(pipeline_file, transactions_topic, labels_topic)
    if via is not None and via[0] != "http":
        raise typer.BadParameter(f"{via[0]!r}: write --via http URL", param_hint="--via")
    bootstrap = via[1] if via is not None else bootstrap_servers or _dev_bootstrap()
    try:
        table, source = resolve_transactions(data, first, first + timedelta(days=days))
    except DataSetError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if limit is not None:
        table = table.iloc[:limit]
    if table.empty:
        err.print(f"[red]error:[/] no transactions from {first} for {days} day(s) in {source.description}")
        raise typer.Exit(2)
    events = replay_events(table, int(label_delay_days * 86_400_000_000), labels)  # type: ignore[arg-type]
    if via is not None:
        from fraudpipeline.replay.http import HttpSink

        sink = HttpSink(
            bootstrap, topics, on_retry=lambda why, wait: err.print(f"[yellow]retrying in {wait:g} s:[/] {why}")
        )
    else:
        sink = KafkaSink(bootstrap, topics)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    try:
        with Progress(*columns, console=err, transient=as_json) as progress:
            task = progress.add_task(f"replay -> {topics['transactions']}", total=len(table), detail="")

            def show(c) -> None:
                progress.update(task, completed=c.transactions, detail=f"{c.labels} labels")

            counts = replay(events, sink, pace, on_progress=show)
    except DeliveryFailed as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    summary = {
        **counts.as_dict(),
        "topics": topics,
        "bootstrap_servers": bootstrap,
        "via": via[0] if via else "kafka",
        "data": source.description,
        "from": str(first),
        "days": days,
    }
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        err.print(
            f"sent {counts.transactions} transactions and {counts.labels} labels in {counts.seconds:.1f} s "
            f"to {topics['transactions']} / {topics['labels']} at {bootstrap}"
        )


def _dev_bootstrap() -> str:
    env_file = Path(".fraudpipe/dev/env.json")
    if env_file.exists():
        bootstrap = json.loads(env_file.read_text()).get("kafka", {}).get("bootstrap")
        if bootstrap:
            return bootstrap
    raise typer.BadParameter(
        "no broker: pass --bootstrap-servers HOST:PORT, or start one with `fraudpipe dev up --with kafka`",
        param_hint="--bootstrap-servers",
    )
