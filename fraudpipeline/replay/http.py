"""Deliver replay events over HTTP: the ingest API (`fraudpipe ingest run`) or a Strimzi Kafka Bridge.

`fraudpipe replay --via http URL` uses this instead of `KafkaSink`. Events are batched per topic
(in order: one request in flight at a time per topic, so a card's transactions keep their order)
and posted with `kafka-bridge-client` in the binary embedded format, which carries the exact key
and value bytes: the records land as `KafkaSink` writes them. A batch goes out when full, or when
its first event has waited `linger_s` (a paced replay stays near real time). A 503 is retried
after its Retry-After; once the service has answered, a silence or 503s (it or its Kafka restarted
by the local mode's supervisor) are waited out for up to `UNREACHABLE_WAIT_S`; anything else stops
the replay.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fraudpipeline.replay.events import ReplayEvent
from fraudpipeline.replay.kafka import DeliveryFailed

UNREACHABLE_WAIT_S = 180.0


class HttpSink:
    def __init__(
        self,
        url: str,
        topics: dict[str, str],
        batch_size: int = 500,
        linger_s: float = 0.2,
        timeout: float = 30.0,
        on_retry: Callable[[str, float], None] | None = None,
    ):
        from fraudpipeline.ingest.client import BridgeProducer

        self.url = url
        self.topics = topics
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.acked = 0
        self.requests = 0
        self._producer = BridgeProducer(url, timeout=timeout, on_retry=on_retry)
        self._pending: dict[str, list] = {role: [] for role in topics}
        self._since: dict[str, float] = {}

    def send(self, event: ReplayEvent) -> None:
        from fraudpipeline.ingest.client import OutRecord

        batch = self._pending[event.role]
        if not batch:
            self._since[event.role] = time.monotonic()
        batch.append(OutRecord(event.key, event.value))
        if len(batch) >= self.batch_size:
            self._flush(event.role)
        now = time.monotonic()
        for role, pending in self._pending.items():
            if pending and now - self._since[role] >= self.linger_s:
                self._flush(role)

    def _flush(self, role: str) -> None:
        from kafka_bridge_client.exceptions import KafkaBridgeError

        batch = self._pending[role]
        if not batch:
            return
        self._pending[role] = []
        try:
            offsets = self._producer.send_records(self.topics[role], batch)
        except KafkaBridgeError as exc:
            raise DeliveryFailed(
                f"{len(batch)} {role} record(s) not acknowledged by {self.url} "
                f"({self.acked} acknowledged before): {exc}"
            ) from None
        self.acked += len(offsets)
        self.requests += 1
        # It answered once: a later silence is a restart, not a wrong address.
        self._producer.unreachable_wait = UNREACHABLE_WAIT_S

    def close(self) -> None:
        try:
            for role in self._pending:
                self._flush(role)
        finally:
            self._producer.close()
