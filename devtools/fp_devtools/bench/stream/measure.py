"""Timing transactions through a pipeline: when the broker appended each one, when it was decided,
when its alert became visible to a read_committed consumer.

The transactions topic is created with `message.timestamp.type=LogAppendTime`, so each delivery
report carries the broker's own append time. Decisions carry the job's `decided_at_ms` (same
machine, same clock). Alerts are timed when a read_committed consumer receives them, which
includes the wait for the checkpoint that commits them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson


@dataclass
class Timings:
    appended_ms: dict[str, int] = field(default_factory=dict)  # transaction id -> broker append time
    decided_ms: dict[str, int] = field(default_factory=dict)
    fraud: set[str] = field(default_factory=set)
    alert_seen_ms: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0


def create_topics(bootstrap: str, names: dict[str, str], partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = []
    for role, name in names.items():
        config = {"message.timestamp.type": "LogAppendTime"} if role == "transactions" else {}
        new.append(NewTopic(name, partitions, 1, config=config))
    for fut in admin.create_topics(new).values():
        fut.result(30)


def produce(bootstrap: str, topics: dict[str, str], events: Iterable, rate: float | None, timings: Timings) -> float:
    """Send replay events (pace: `rate` transactions/s, or flat out); returns the seconds it took."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 1,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    appended = timings.appended_ms

    def delivered(tx_id, err, msg):
        if err is None and tx_id is not None:
            appended[tx_id] = msg.timestamp()[1]

    sent = 0
    start = time.monotonic()
    for event in events:
        tx_id = None
        if event.role == "transactions":
            if rate:
                delay = start + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sent += 1
            tx_id = _tx_id(event.value)
        while True:
            try:
                producer.produce(
                    topics[event.role],
                    value=event.value,
                    key=event.key,
                    on_delivery=lambda err, msg, t=tx_id: delivered(t, err, msg),
                )
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(60) == 0, "the broker did not acknowledge every record"
    return time.monotonic() - start


def _tx_id(value: bytes) -> str | None:
    try:
        return str(orjson.loads(value)["transaction_id"])
    except Exception:  # noqa: BLE001 - garbage on purpose: it has no id and goes to the dead letters
        return None


class Collector:
    """Background consumers of the scores (read_uncommitted: decisions as they are made), alerts
    (read_committed: as consumers of the product see them) and dead letters."""

    def __init__(self, bootstrap: str, topics: dict[str, str], timings: Timings):
        self.bootstrap = bootstrap
        self.topics = topics
        self.timings = timings
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._scores, daemon=True),
            threading.Thread(target=self._alerts, daemon=True),
            threading.Thread(target=self._dead, daemon=True),
        ]

    def start(self) -> Collector:
        for t in self.threads:
            t.start()
        return self

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _consumer(self, topic: str, committed: bool, wait_ms: int = 500):
        from confluent_kafka import Consumer

        c = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"bench-{topic}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed" if committed else "read_uncommitted",
                # Only the alerts are timed on arrival; the others carry their time or are counted, and
                # polling them every 10 ms would cost the shared broker CPU that the job lacks.
                "fetch.wait.max.ms": wait_ms,
            }
        )
        c.subscribe([topic])
        return c

    def _scores(self) -> None:
        c = self._consumer(self.topics["scores"], committed=False)
        decided, fraud = self.timings.decided_ms, self.timings.fraud
        while not self.stop.is_set():
            for m in c.consume(2000, timeout=0.1):
                if m.error() is None:
                    s = orjson.loads(m.value())
                    decided[s["transaction_id"]] = s["decided_at_ms"]
                    if s["is_fraud"]:
                        fraud.add(s["transaction_id"])
        c.close()

    def _alerts(self) -> None:
        c = self._consumer(self.topics["alerts"], committed=True, wait_ms=10)
        seen = self.timings.alert_seen_ms
        while not self.stop.is_set():
            for m in c.consume(500, timeout=0.05):
                if m.error() is None:
                    now = int(time.time() * 1000)
                    seen[str(orjson.loads(m.value())["transaction"]["transaction_id"])] = now
        c.close()

    def _dead(self) -> None:
        c = self._consumer(self.topics["deadLetter"], committed=True)
        while not self.stop.is_set():
            self.timings.dead_letters += sum(1 for m in c.consume(500, timeout=0.2) if m.error() is None)
        c.close()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 2)
