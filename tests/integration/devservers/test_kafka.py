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


@pytest.mark.parametrize("cluster_id", ["-" + "A" * 21, "-t" + "b" * 20, "--" + "c" * 20])
def test_storage_formats_with_ids_beginning_with_a_dash(tmp_path, cluster_id):
    """Kafka's own StorageTool, as every broker start runs it, takes an id that looks like an option."""
    from fp_devtools import argv, cache
    from fp_devtools import kafka as dev_kafka
    from fp_devtools.cache import MissingPrerequisite

    try:
        java, cp = cache.require("java"), dev_kafka.classpath()
    except MissingPrerequisite as exc:
        pytest.skip(f"Kafka's jars cannot be had here: {exc} (`make servers` fetches them)")
    props = tmp_path / "server.properties"
    port, controller = argv.free_ports(2)
    props.write_text(argv.kafka_properties(tmp_path / "data", port, controller))
    dev_kafka.format_storage(java, cp, cluster_id, props, tmp_path / "kafka.log")
    meta = dict(
        line.split("=", 1) for line in (tmp_path / "data" / "meta.properties").read_text().splitlines() if "=" in line
    )
    assert meta["cluster.id"] == cluster_id
