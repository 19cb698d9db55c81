"""Deliver replay events straight to Kafka with an idempotent producer."""

from __future__ import annotations

from fraudpipeline.replay.events import ReplayEvent


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge some records; the message says how many and why."""


class KafkaSink:
    """Produces each event to its role's topic, keyed as the event says.

    `acks=all` with idempotence: a record the broker acknowledged is written exactly once, even
    when the client retries. `close()` waits for every acknowledgement and raises if any failed.
    """

    def __init__(self, bootstrap_servers: str, topics: dict[str, str], **config):
        from confluent_kafka import Producer

        self.topics = topics
        self.failed = 0
        self.first_error: str | None = None
        self.acked = 0
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                # Java's partitioner (and the Strimzi bridge's, and the ingest API's): a card lands in the
                # same partition whichever way its transactions come in.
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 500_000,
                **config,
            }
        )

    def _on_delivery(self, err, _msg) -> None:
        if err is None:
            self.acked += 1
        else:
            self.failed += 1
            self.first_error = self.first_error or str(err)

    def send(self, event: ReplayEvent) -> None:
        topic = self.topics[event.role]
        while True:
            try:
                self._producer.produce(topic, value=event.value, key=event.key, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.05)
        self._producer.poll(0)

    def close(self, timeout: float = 60.0) -> None:
        left = self._producer.flush(timeout)
        if left:
            raise DeliveryFailed(f"{left} record(s) still unacknowledged after {timeout:.0f} s: is the broker up?")
        if self.failed:
            raise DeliveryFailed(f"{self.failed} record(s) were refused by the broker, first error: {self.first_error}")
