"""Real clients against the service and the real broker: kafka-bridge-client as published, our
BridgeProducer, `fraudpipe send`, `fraudpipe replay --via http`, curl, and many clients at once."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import pytest
from ingest_support import create_topic, java_partition, read_topic, transaction
from kafka_bridge_client import KafkaBridgeProducer, Message

from fraudpipeline.ingest.client import BridgeProducer, OutRecord, RecordsRefused

pytestmark = pytest.mark.integration


def fraudpipe(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraudpipeline.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_published_kafka_bridge_client_works_unchanged(ingest, kafka):
    """KafkaBridgeProducer as released: json format (its default) and binary, one record and a batch."""
    topic = create_topic(kafka["bootstrap"], 3)
    producer = KafkaBridgeProducer(ingest["url"], timeout=10)
    assert producer.send(topic, Message(key="c-1", value="first")) is True
    assert producer.sends(topic, [Message(key=f"c-{i}", value=f"v{i}") for i in range(5)]) is True
    assert producer.send(topic, {"key": "c-bin", "value": b"\x00\x01raw"}, binary=True) is True
    got = read_topic(kafka["bootstrap"], topic)
    assert len(got) == 7
    values = {r.value for r in got}
    assert b'"first"' in values and b"\x00\x01raw" in values  # json: JSON text; binary: the exact bytes
    raw = next(r for r in got if r.value == b"\x00\x01raw")
    assert raw.key == b"c-bin" and raw.partition == java_partition(b"c-bin", 3)


def test_bridge_producer_returns_offsets_keeps_timestamps_and_raises_on_refused_records(ingest, kafka):
    topic = create_topic(kafka["bootstrap"], 2)
    producer = BridgeProducer(ingest["url"], timeout=10)
    records = [OutRecord(f"k{i}".encode(), f"value {i}".encode(), 1_500_000_000_000 + i) for i in range(10)]
    offsets = producer.send_records(topic, records)
    assert len(offsets) == 10
    held = {(r.partition, r.offset): r for r in read_topic(kafka["bootstrap"], topic)}
    for rec, where in zip(records, offsets):
        got = held[(where["partition"], where["offset"])]
        assert (got.key, got.value, got.timestamp) == (rec.key, rec.value, rec.timestamp_ms)
    with pytest.raises(RecordsRefused) as refused:
        producer.send_records("it-no-such-topic", records[:2])
    assert refused.value.errors[0][1] == 404
    producer.close()


def test_fraudpipe_send_prints_offsets_and_field_errors(ingest):
    tx = transaction(5000)
    done = fraudpipe("send", json.dumps(tx), "-f", str(ingest["file"]), "--url", ingest["url"])
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    tx_id, partition, offset = line.split("\t")
    assert tx_id == tx["transaction_id"]
    partition_no, offset_no = int(partition.split()[1]), int(offset.split()[1])
    rec = next(
        r
        for r in read_topic(ingest["bootstrap"], ingest["topics"]["transactions"])
        if (r.partition, r.offset) == (partition_no, offset_no)
    )
    assert rec.key == tx["customer_id"].encode() and json.loads(rec.value) == tx

    bad = dict(tx, amount="lots")
    done = fraudpipe("send", json.dumps(bad), "-f", str(ingest["file"]), "--url", ingest["url"])
    assert done.returncode == 2
    assert "field 'amount'" in done.stderr and "expected a finite number >= 0" in done.stderr
    assert "nothing sent" in done.stderr


def test_fraudpipe_send_json_lines_from_stdin_in_batches(ingest):
    lines = "\n".join(json.dumps(transaction(6000 + i)) for i in range(1200))
    done = fraudpipe(
        "send", "-", "-f", str(ingest["file"]), "--url", ingest["url"], "--batch-size", "500", "--json", stdin=lines
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["topic"] == ingest["topics"]["transactions"]
    assert len(result["offsets"]) == 1200
    held = {(r.partition, r.offset) for r in read_topic(ingest["bootstrap"], ingest["topics"]["transactions"])}
    assert {(o["partition"], o["offset"]) for o in result["offsets"]} <= held


def test_fraudpipe_send_labels(ingest):
    label = {
        "transaction_id": "tx-006001",
        "customer_id": "c-9",
        "terminal_id": "t-3",
        "timestamp": "2018-07-25T13:00:01Z",
        "fraud": 1,
    }
    done = fraudpipe("send", "--labels", json.dumps(label), "-f", str(ingest["file"]), "--url", ingest["url"], "--json")
    assert done.returncode == 0, done.stderr
    [where] = json.loads(done.stdout)["offsets"]
    assert where["partition"] == java_partition(b"t-3", 3)


def test_the_curl_line_of_the_bridge_docs(ingest, kafka):
    """What a Strimzi bridge user types, verbatim but for host and topic."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not on PATH (the test runs the command a bridge user would type)")
    topic = create_topic(kafka["bootstrap"], 1)
    body = '{"records":[{"key":"key-1","value":"value-1"},{"key":"key-2","value":"value-2"}]}'
    done = subprocess.run(
        [
            curl,
            "-s",
            "-X",
            "POST",
            f"{ingest['url']}/topics/{topic}",
            "-H",
            "content-type: application/vnd.kafka.json.v2+json",
            "-d",
            body,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert json.loads(done.stdout) == {"offsets": [{"partition": 0, "offset": 0}, {"partition": 0, "offset": 1}]}
    assert [(r.key, r.value) for r in read_topic(kafka["bootstrap"], topic)] == [
        (b'"key-1"', b'"value-1"'),
        (b'"key-2"', b'"value-2"'),
    ]


def test_concurrent_clients_lose_and_duplicate_nothing(ingest, kafka):
    topic = create_topic(kafka["bootstrap"], 3)
    clients, requests_each, per_request = 8, 20, 25

    def client(c: int) -> list[tuple[int, int]]:
        where = []
        with httpx.Client(base_url=ingest["url"], timeout=30) as http:
            for r in range(requests_each):
                records = [
                    {
                        "key": base64.b64encode(f"c{c}".encode()).decode(),
                        "value": base64.b64encode(f"{c}-{r}-{i}".encode()).decode(),
                    }
                    for i in range(per_request)
                ]
                response = http.post(
                    f"/topics/{topic}",
                    json={"records": records},
                    headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
                )
                assert response.status_code == 200, response.text
                where += [(o["partition"], o["offset"]) for o in response.json()["offsets"]]
        return where

    with ThreadPoolExecutor(clients) as pool:
        answered = [w for ws in pool.map(client, range(clients)) for w in ws]
    total = clients * requests_each * per_request
    assert len(answered) == len(set(answered)) == total
    held = read_topic(kafka["bootstrap"], topic)
    assert {(r.partition, r.offset) for r in held} == set(answered)
    assert sorted(r.value for r in held) == sorted(
        f"{c}-{r}-{i}".encode() for c in range(clients) for r in range(requests_each) for i in range(per_request)
    )
    for c in range(clients):  # one client's records keep their order within its card's partition
        mine = [
            int(r.value.split(b"-")[1]) * per_request + int(r.value.split(b"-")[2])
            for r in held
            if r.key == f"c{c}".encode()
        ]
        assert mine == sorted(mine)


def test_replay_via_http_writes_what_the_kafka_sink_writes(ingest, kafka, tmp_path):
    """`fraudpipe replay --via http URL`: keys and values as replay_events() makes them, timestamped
    when written (as the Kafka sink leaves them)."""
    from fraudpipeline.data import resolve_transactions
    from fraudpipeline.replay.events import replay_events

    tx_topic, label_topic = create_topic(kafka["bootstrap"], 3), create_topic(kafka["bootstrap"], 3)
    args = [
        "replay",
        "--from",
        "2018-08-08",
        "--days",
        "2",
        "--limit",
        "1500",
        "--labels",
        "all",
        "--label-delay-days",
        "0.25",
        "--transactions-topic",
        tx_topic,
        "--labels-topic",
        label_topic,
        "--via",
        "http",
        ingest["url"],
        "--json",
    ]
    started = int(time.time() * 1000)
    done = fraudpipe(*args, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["via"] == "http"
    table, _ = resolve_transactions(None, date(2018, 8, 8), date(2018, 8, 10))
    expected = list(replay_events(table.iloc[:1500], int(0.25 * 86_400_000_000), "all"))
    assert summary["transactions"] == sum(e.role == "transactions" for e in expected)
    for role, topic in (("transactions", tx_topic), ("labels", label_topic)):
        held = read_topic(kafka["bootstrap"], topic)
        assert sorted((r.key, r.value) for r in held) == sorted((e.key, e.value) for e in expected if e.role == role)
        assert all(started - 5 <= r.timestamp <= time.time() * 1000 + 5 for r in held), role
        for partition in {r.partition for r in held}:  # each partition in send (event-time) order
            values = [json.loads(r.value)["timestamp"] for r in held if r.partition == partition]
            assert values == sorted(values), (role, partition)
