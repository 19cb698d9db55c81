"""Small Kafka helpers for the streaming tests: topics, raw produce, and reading a topic to its end."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


def create_topics(bootstrap: str, names: list[str], partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for fut in futures.values():
        try:
            fut.result(30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for key, value in records:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0


def end_offsets(bootstrap: str, topic: str, retry_s: float = 15.0) -> dict[int, int]:
    """The high watermark of each partition; retried while a new topic's leaders are being elected."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "fp-test-offsets"})
    deadline = time.monotonic() + retry_s
    try:
        while True:
            try:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, committed: bool = True, idle_s: float = 3.0) -> list[Message]:
    """Every record of `topic` (read_committed by default), up to its end as it is now."""
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "fp-test-reader",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    out: list[Message] = []
    try:
        while True:
            batch = consumer.consume(5000, timeout=idle_s)
            for m in batch:
                if m.error() is None:
                    out.append(Message(m.key(), m.value(), dict(m.headers() or []), m.partition(), m.offset()))
            positions = {tp.partition: tp.offset for tp in consumer.position([TopicPartition(topic, p) for p in ends])}
            if all(positions.get(p, -1) >= end for p, end in ends.items() if end > 0) or not batch:
                return out
    finally:
        consumer.close()
