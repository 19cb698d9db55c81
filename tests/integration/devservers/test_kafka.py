"""The Kafka broker is real: records round-trip, and transactions are honoured."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration


def _topic(kafka: dict, partitions: int = 1) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka["bootstrap"]})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    return name


def _consume_all(
    kafka: dict, topic: str, expected: int, isolation: str = "read_uncommitted", timeout: float = 30
) -> list[bytes]:
    import time

    consumer = Consumer(
        {
            "bootstrap.servers": kafka["bootstrap"],
            "group.id": f"g-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        # Read until `expected` records arrived, then a little longer to catch any extra.
        quiet_until = None
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if len(got) >= expected:
                    quiet_until = quiet_until or time.monotonic() + 2
                    if time.monotonic() > quiet_until:
                        break
                continue
            if msg.error():
                raise KafkaException(msg.error())
            got.append(msg.value())
    finally:
        consumer.close()
    return got


def test_produced_records_are_consumed_back(kafka):
    topic = _topic(kafka)
    producer = Producer({"bootstrap.servers": kafka["bootstrap"], "enable.idempotence": True})
    sent = [f"tx-{i}".encode() for i in range(100)]
    for v in sent:
        producer.produce(topic, v)
    assert producer.flush(30) == 0
    assert _consume_all(kafka, topic, len(sent)) == sent


def test_read_committed_consumer_sees_only_committed_transactions(kafka):
    topic = _topic(kafka, partitions=2)
    producer = Producer({"bootstrap.servers": kafka["bootstrap"], "transactional.id": f"tx-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, f"committed-{i}".encode())
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, f"aborted-{i}".encode())
    producer.flush(30)
    producer.abort_transaction(30)

    committed = _consume_all(kafka, topic, 5, isolation="read_committed")
    assert sorted(committed) == sorted(f"committed-{i}".encode() for i in range(5))
    # The aborted records were written to the log: an uncommitted reader sees them too.
    everything = _consume_all(kafka, topic, 10, isolation="read_uncommitted")
    assert len(everything) == 10
