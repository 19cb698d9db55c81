"""Helpers of the ingest integration tests: topics, the service as a process, reading a topic back."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fp_devtools.process import free_port, log_tail, spawn, stop, wait_healthy

JSON_FMT = "application/vnd.kafka.json.v2+json"
BINARY_FMT = "application/vnd.kafka.binary.v2+json"
TEXT_FMT = "application/vnd.kafka.text.v2+json"


def create_topic(bootstrap: str, partitions: int = 1, name: str | None = None) -> str:
    name = name or f"it-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    # Wait until the broker serves the topic's metadata (leaders elected).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(name, timeout=5).topics.get(name)
        if (
            md is not None
            and md.error is None
            and len(md.partitions) == partitions
            and all(p.leader >= 0 for p in md.partitions.values())
        ):
            return name
        time.sleep(0.1)
    raise AssertionError(f"topic {name} never became available")


def topic_exists(bootstrap: str, name: str) -> bool:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return name in md.topics


@dataclass
class Read:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: list[tuple[str, bytes]]


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Read]:
    """Every record the broker holds in `topic`, partition by partition in offset order."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"it-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        got: list[Read] = []
        seen = {p: -1 for p in ends}
        deadline = time.monotonic() + timeout
        while any(seen[p] < ends[p] - 1 for p in ends):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(got)} records of {topic}, ends {ends}, seen {seen}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            seen[msg.partition()] = msg.offset()
            got.append(
                Read(
                    msg.partition(), msg.offset(), msg.key(), msg.value(), msg.timestamp()[1], list(msg.headers() or [])
                )
            )
        return sorted(got, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def pipeline_yaml(name: str, namespace: str, partitions: int = 3, bridge_port: int | None = None) -> str:
    spec = {
        "apiVersion": "frauddetect.dev/v1alpha1",
        "kind": "FraudPipeline",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "kafka": {
                "cluster": "main",
                "topics": {"transactions": {"partitions": partitions}, "labels": {"partitions": partitions}},
            },
            "model": {"image": "ghcr.io/frauddetect/fraudpipeline-serving:0.1.0", "modelTag": "fraud-xgb:it"},
            "stream": {"image": "ghcr.io/frauddetect/fraudpipeline-flink:0.1.0"},
        },
    }
    if bridge_port is not None:
        spec["spec"]["kafka"]["bridge"] = {"port": bridge_port}
    return yaml.safe_dump(spec)


class IngestProcess:
    """`fraudpipe ingest run` as its own process (as a user starts it), on a free port."""

    def __init__(self, pipeline_file: Path, bootstrap: str, log: Path, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.argv = [
            sys.executable,
            "-m",
            "fraudpipeline.cli",
            "ingest",
            "run",
            "-f",
            str(pipeline_file),
            "--bootstrap-servers",
            bootstrap,
            "--port",
            str(self.port),
            "--log-level",
            "info",
            *extra,
        ]
        self.proc = None

    def start(self, ready: bool = True) -> IngestProcess:
        self.proc = spawn(self.argv, self.log)
        path = "/readyz" if ready else "/livez"
        wait_healthy(
            "fraudpipe ingest",
            self.proc,
            lambda: httpx.get(self.url + path, timeout=2).status_code == 200,
            self.log,
            timeout=60,
        )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc.pid)
            self.proc = None

    def log_tail(self) -> str:
        return log_tail(self.log, 60)


def murmur2(data: bytes) -> int:
    """Kafka's Java `Utils.murmur2` (unsigned 32-bit): what the Java producer and the bridge partition by."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[4 * n4 :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner gives a keyed record: toPositive(murmur2(key)) % n."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def transaction(i: int, customer: str | None = None, **extra) -> dict:
    return {
        "transaction_id": f"tx-{i:06d}",
        "timestamp": f"2018-07-25T13:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "customer_id": customer or f"c-{i % 37}",
        "terminal_id": f"t-{i % 11}",
        "amount": round(1 + i * 0.37, 2),
        **extra,
    }
