"""`fraudpipe alerts`: the committed alerts of a local pipeline, as the job's consumers see them.

Reads the alerts topic with isolation.level=read_committed: an alert shows once the checkpoint
that covers it has completed, and an alert of an aborted attempt never shows.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any


def read(
    bootstrap: str,
    topic: str,
    follow: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[dict[str, Any]]:
    """Every committed alert from the beginning, in each partition's order; with `follow`, then the new ones."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fraudpipe-alerts-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise LookupError(f"the alerts topic {topic} does not exist at {bootstrap}")
        partitions = sorted(meta.partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end: set[int] = set()
        while not stop():
            for msg in consumer.consume(500, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition())
                    continue
                at_end.discard(msg.partition())
                try:
                    alert = json.loads(msg.value())
                except (TypeError, ValueError):
                    continue
                alert.setdefault("source", {"topic": topic, "partition": msg.partition(), "offset": msg.offset()})
                yield alert
            if not follow and len(at_end) == len(partitions):
                return
    finally:
        consumer.close()


def line(alert: dict[str, Any], drivers: list[dict] | None = None) -> str:
    """One alert as one line of text."""
    t = alert.get("transaction") or {}
    amount = t.get("amount")
    text = (
        f"{alert.get('decided_at', '?'):<24}  tx {t.get('transaction_id')}  card {t.get('customer_id')}  "
        f"terminal {t.get('terminal_id')}  amount {amount:.2f}  at {t.get('timestamp')}  "
        f"score {alert.get('score', 0):.3f} >= {alert.get('threshold', 0):.3f}  {alert.get('model_tag')}"
        if isinstance(amount, (int, float))
        else json.dumps(alert)
    )
    if drivers:
        text += "  driven by " + ", ".join(f"{d['feature']}={d['value']:g} (+{d['contribution']:.2f})" for d in drivers)
    return text


def emit(alert: dict[str, Any], as_json: bool, explainer) -> None:
    if as_json:
        sys.stdout.write(json.dumps(alert, separators=(",", ":")) + "\n")
    else:
        drivers = explainer.drivers(alert.get("features") or {}) if explainer is not None else None
        sys.stdout.write(line(alert, drivers) + "\n")
    sys.stdout.flush()
