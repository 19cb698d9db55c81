"""`fraudpipe send`: post transactions (or labels) to the ingest service or a Strimzi Kafka Bridge.

Records come as an argument, a file or stdin, in JSON (one object or an array) or JSON lines. All
are validated first (`fraudpipeline.transactions`): one bad record and nothing is sent, and each
bad record is named with its field and the fix. Then they go out in batches through
`kafka-bridge-client` (`BridgeProducer`, the binary embedded format), keyed by card (transactions)
or terminal (labels), exactly as POST /v1/transactions writes them: the Kafka timestamp is the
server's time of receipt unless `--record-timestamp event` asks for each transaction's own time.
Prints the partition and offset of every record.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer

ENV_URL = "FRAUDPIPE_INGEST_URL"


class InputError(ValueError):
    """The input cannot be read as records; the message says where and how to fix it."""


def read_source(source: str | None, stdin: Any = None) -> tuple[str, str]:
    """(text, where) from an inline JSON argument, a file path, or "-"/nothing for stdin."""
    stdin = stdin or sys.stdin
    if source is None or source == "-":
        if source is None and stdin.isatty():
            raise InputError("no records given: pass a JSON object, a file (JSON or JSON lines), or '-' for stdin")
        return stdin.read(), "stdin"
    if source.lstrip()[:1] in ("{", "["):
        return source, "the argument"
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{source!r} is neither JSON (an object or an array) nor a file")
    return path.read_text(), str(path)


def parse_records(text: str, where: str) -> list[tuple[int, Any]]:
    """[(line number, record)] from JSON (an object or an array of objects) or JSON lines."""
    stripped = text.strip()
    if not stripped:
        raise InputError(f"{where} is empty: give at least one record")
    try:
        doc = json.loads(stripped)
    except ValueError:
        doc = None
        single_doc = False
    else:
        single_doc = True
    if single_doc:
        if isinstance(doc, list):
            return [(0, item) for item in doc]
        return [(0, doc)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except ValueError as exc:
            raise InputError(
                f"{where}, line {number}: not JSON ({exc}); give one JSON object per line, "
                "or one JSON document (an object or an array)"
            ) from None
    return records


def build_records(
    items: list[tuple[int, Any]], role: str, event_time: bool = False
) -> tuple[list[Any], list[str], list[str]]:
    """(OutRecords, ids, errors): each record validated and keyed as POST /v1/{role} does."""
    from fraudpipeline.ingest.bridge import dumps
    from fraudpipeline.ingest.client import OutRecord
    from fraudpipeline.transactions import InvalidRecordError, parse_label, parse_transaction

    parse = parse_transaction if role == "transactions" else parse_label
    out, ids, errors = [], [], []
    for index, (line, item) in enumerate(items):
        where = f"record {index + 1}" + (f" (line {line})" if line else "")
        try:
            if not isinstance(item, dict):  # (parse() would read a string as JSON text)
                raise InvalidRecordError(role[:-1], [("(document)", "the record must be a JSON object")])
            rec = parse(item)
        except InvalidRecordError as exc:
            errors.append(f"{where}: {exc}")
            continue
        if role == "transactions" and event_time:
            ts = rec.event_time_us // 1000
            if ts < 0:
                errors.append(
                    f"{where}: invalid transaction: field 'timestamp' is before 1970, which a Kafka "
                    "record timestamp cannot carry"
                )
                continue
            out.append(OutRecord(rec.customer_id.encode(), dumps(item), ts))
        elif role == "transactions":
            out.append(OutRecord(rec.customer_id.encode(), dumps(item), None))
        else:
            out.append(OutRecord(rec.terminal_id.encode(), dumps(item), None))
        ids.append(rec.transaction_id)
    return out, ids, errors


def summarize(offsets: list[dict[str, Any]]) -> list[str]:
    by_partition: dict[int, list[int]] = defaultdict(list)
    for o in offsets:
        by_partition[o["partition"]].append(o["offset"])
    return [f"partition {p}: {len(v)} record(s), offsets {min(v)}..{max(v)}" for p, v in sorted(by_partition.items())]


def command(
    source: Annotated[
        str | None,
        typer.Argument(
            help="A JSON record or array, a file of JSON or JSON lines, or '-' for stdin (the default when piped).",
            show_default=False,
        ),
    ] = None,
    pipeline_file: Annotated[
        Path | None,
        typer.Option(
            "-f",
            "--file",
            help="FraudPipeline YAML: the topic, and the port of the default URL.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help=f"The ingest service or Strimzi Kafka Bridge. Default: ${ENV_URL}, else "
            "http://127.0.0.1:<the spec's bridge port, 8080>."
        ),
    ] = None,
    labels: Annotated[bool, typer.Option("--labels", help="The records are labels (keyed by terminal).")] = False,
    topic: Annotated[str | None, typer.Option(help="Topic to write to (overrides the file's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Records per request.", min=1, max=10_000)] = 500,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.", min=0.1)] = 30.0,
    record_timestamp: Annotated[
        str,
        typer.Option(
            help="Kafka timestamp: received (the server's time) or event (each transaction's own time; for live "
            "traffic only: the topic's retention deletes older records at once)."
        ),
    ] = "received",
    as_json: Annotated[bool, typer.Option("--json", help="Print {topic, offsets} as JSON on stdout.")] = False,
) -> None:
    """Send transactions (or labels) and print where each landed: partition and offset."""
    from kafka_bridge_client.exceptions import KafkaBridgeError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fraudpipeline.ingest.client import BridgeProducer

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    role = "labels" if labels else "transactions"
    port = 8080
    if pipeline_file is not None:
        from fraudpipeline.spec import SpecError, load_pipeline

        try:
            pipeline = load_pipeline(pipeline_file)
        except SpecError as exc:
            raise typer.BadParameter(str(exc), param_hint="-f") from None
        topic = topic or pipeline.topic_name(role)
        port = pipeline.spec.kafka.bridge.port
    if topic is None:
        raise typer.BadParameter("no topic: pass -f FRAUDPIPELINE.yaml or --topic NAME", param_hint="--topic")
    base = url or os.environ.get(ENV_URL) or f"http://127.0.0.1:{port}"

    try:
        items = parse_records(*read_source(source))
    except (InputError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if record_timestamp not in ("received", "event"):
        raise typer.BadParameter(f"{record_timestamp!r}: choose received or event", param_hint="--record-timestamp")
    records, ids, errors = build_records(items, role, event_time=record_timestamp == "event")
    if errors:
        for line in errors[:20]:
            err.print(f"[red]invalid:[/] {line}")
        if len(errors) > 20:
            err.print(f"... and {len(errors) - 20} more")
        err.print(f"nothing sent: {len(errors)} of {len(items)} record(s) are invalid")
        raise typer.Exit(2)

    def retrying(reason: str, wait: float) -> None:
        err.print(f"[yellow]retrying in {wait:g} s:[/] {reason}")

    producer = BridgeProducer(base, timeout=timeout, on_retry=retrying)
    offsets: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True, disable=len(records) <= batch_size) as progress:
            task = progress.add_task(f"send -> {topic}", total=len(records))
            for start in range(0, len(records), batch_size):
                offsets += producer.send_records(topic, records[start : start + batch_size])
                progress.update(task, completed=len(offsets))
    except KafkaBridgeError as exc:
        err.print(f"[red]error:[/] {exc}")
        if offsets:
            err.print(f"the first {len(offsets)} record(s) were written before that (see --json for where)")
        if as_json:
            sys.stdout.write(json.dumps({"topic": topic, "url": base, "offsets": offsets}) + "\n")
        raise typer.Exit(1) from None
    finally:
        producer.close()
    if as_json:
        sys.stdout.write(json.dumps({"topic": topic, "url": base, "offsets": offsets}) + "\n")
        return
    if len(offsets) <= 20:
        for rid, o in zip(ids, offsets):
            print(f"{rid}\tpartition {o['partition']}\toffset {o['offset']}")
    else:
        for line in summarize(offsets):
            print(line)
    err.print(f"sent {len(offsets)} {role if len(offsets) != 1 else role[:-1]} to {topic} via {base}")
