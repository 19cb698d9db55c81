"""POST /v1/transactions and /v1/labels against a real broker: keys, partitions, timestamps, errors,
limits; and the service's own surface: health, readiness, metrics, topic metadata, /openapi."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from ingest_support import java_partition, murmur2, read_topic, transaction

pytestmark = pytest.mark.integration


def end_offsets(ingest: dict, role: str) -> int:
    return len(read_topic(ingest["bootstrap"], ingest["topics"][role]))


def by_id(records) -> dict:
    return {str(json.loads(r.value)["transaction_id"]): r for r in records}


def test_murmur2_matches_javas_test_vectors():
    """The test's partition check relies on Java's murmur2: the vectors of Kafka's own UtilsTest."""

    def signed(x: int) -> int:
        return x - (1 << 32) if x >= 1 << 31 else x

    assert signed(murmur2(b"21")) == -973932308
    assert signed(murmur2(b"foobar")) == -790332482
    assert signed(murmur2(b"a-little-bit-long-string")) == -985981536
    assert signed(murmur2(b"abc")) == 479470107


def test_transactions_are_keyed_by_card_and_partitioned_as_java_does(ingest):
    # The last one sends its ids as JSON integers (the handbook's form): keyed by their decimal text.
    sent = [transaction(i) for i in range(40)] + [transaction(40, customer_id=12345, transaction_id=987654)]
    before = int(time.time() * 1000)
    response = httpx.post(ingest["url"] + "/v1/transactions", json=sent, timeout=30)
    after = int(time.time() * 1000)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    offsets = response.json()["offsets"]
    assert len(offsets) == len(sent)
    held = by_id(read_topic(ingest["bootstrap"], ingest["topics"]["transactions"]))
    for tx, where in zip(sent, offsets):
        rec = held[str(tx["transaction_id"])]
        key = str(tx["customer_id"]).encode()
        assert rec.key == key  # the card, as plain text
        assert json.loads(rec.value) == tx  # the transaction as it was sent (integer ids stay integers)
        assert before - 5 <= rec.timestamp <= after + 5  # received now; event time stays in the value
        assert (rec.partition, rec.offset) == (where["partition"], where["offset"])
        assert rec.partition == java_partition(key, 3)


def test_one_transaction_object_is_one_record(ingest):
    tx = transaction(100, channel="web")
    response = httpx.post(ingest["url"] + "/v1/transactions", json=tx, timeout=30)
    assert response.status_code == 200
    [where] = response.json()["offsets"]
    rec = by_id(read_topic(ingest["bootstrap"], ingest["topics"]["transactions"]))[tx["transaction_id"]]
    assert (rec.partition, rec.offset) == (where["partition"], where["offset"])
    assert json.loads(rec.value)["channel"] == "web"  # fields beyond the schema travel as they came


def test_labels_are_keyed_by_terminal_and_timestamped_when_received(ingest):
    label = {
        "transaction_id": "tx-000007",
        "customer_id": "c-7",
        "terminal_id": "t-7",
        "timestamp": "2018-07-25T13:00:07Z",
        "fraud": 1,
    }
    before = int(time.time() * 1000)
    response = httpx.post(ingest["url"] + "/v1/labels", json=label, timeout=30)
    after = int(time.time() * 1000)
    assert response.status_code == 200
    [where] = response.json()["offsets"]
    rec = by_id(read_topic(ingest["bootstrap"], ingest["topics"]["labels"]))["tx-000007"]
    assert rec.key == b"t-7"
    assert rec.partition == where["partition"] == java_partition(b"t-7", 3)
    assert before - 5 <= rec.timestamp <= after + 5


def test_an_invalid_transaction_is_422_naming_record_field_and_fix_and_nothing_is_sent(ingest):
    before = end_offsets(ingest, "transactions")
    bad = transaction(200)
    bad["amount"] = -3
    batch = [transaction(201), bad, transaction(202, timestamp="2018-07-25T13:45:00")]
    response = httpx.post(ingest["url"] + "/v1/transactions", json=batch, timeout=30)
    assert response.status_code == 422
    error = response.json()
    assert error["error_code"] == 422
    assert error["message"].startswith(
        "2 of 3 records are invalid, nothing was sent; record 1: invalid transaction: field 'amount'"
    )
    assert "expected a finite number >= 0" in error["message"]
    assert error["validation_errors"][1].startswith("record 2: invalid transaction: field 'timestamp'")
    assert "RFC 3339 date-time with a UTC offset" in error["validation_errors"][1]
    assert end_offsets(ingest, "transactions") == before


def test_a_single_invalid_label_names_the_field(ingest):
    label = {
        "transaction_id": "tx-1",
        "customer_id": "c-1",
        "terminal_id": "t-1",
        "timestamp": "2018-07-25T13:00:07Z",
        "fraud": True,
    }
    response = httpx.post(ingest["url"] + "/v1/labels", json=label, timeout=30)
    assert response.status_code == 422
    assert response.json()["message"] == (
        "invalid label: field 'fraud' must be the integer 0 or 1 (got True); expected 0 (genuine) or 1 (fraud)"
    )


def test_wrong_content_type_and_bad_json(ingest):
    url = ingest["url"] + "/v1/transactions"
    wrong = httpx.post(url, content=json.dumps(transaction(1)), headers={"Content-Type": "text/plain"}, timeout=30)
    assert wrong.status_code == 415
    assert "Content-Type: application/json" in wrong.json()["message"]
    broken = httpx.post(url, content=b'{"transaction_id": ', headers={"Content-Type": "application/json"}, timeout=30)
    assert broken.status_code == 400
    assert broken.json()["message"].startswith("The request body is not valid JSON")


def test_a_body_over_the_limit_is_413_and_nothing_is_sent(ingest):
    before = end_offsets(ingest, "transactions")
    big = [transaction(i, note="x" * 2000) for i in range(600)]  # about 1.3 MB, over the 1 MiB default
    response = httpx.post(ingest["url"] + "/v1/transactions", json=big, timeout=30)
    assert response.status_code == 413
    assert "larger than the limit of 1048576 bytes" in response.json()["message"]
    too_many = [transaction(i) for i in range(1001)]
    response = httpx.post(ingest["url"] + "/v1/transactions", json=too_many, timeout=30)
    assert response.status_code == 413
    assert response.json()["message"].startswith("The request carries 1001 records, more than the limit of 1000")
    bridge = httpx.post(
        ingest["url"] + f"/topics/{ingest['topics']['transactions']}",
        json={"records": [{"value": "v"}] * 1001},
        headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
        timeout=30,
    )
    assert bridge.status_code == 413
    assert bridge.json()["error_code"] == 413
    assert end_offsets(ingest, "transactions") == before


def test_health_readiness_and_bridge_checks(ingest):
    url = ingest["url"]
    assert httpx.get(url + "/livez").status_code == 200
    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200
    state = ready.json()
    assert state["ready"] and state["kafka_up"]
    assert state["topics"]["transactions"] == {"topic": ingest["topics"]["transactions"], "exists": True}
    assert httpx.get(url + "/healthy").status_code == 200
    assert httpx.get(url + "/ready").status_code == 200
    assert httpx.get(url + "/").json()["bridge_version"] == "1.1.0"


def test_topic_metadata_as_the_bridge_serves_it(ingest):
    url, topic = ingest["url"], ingest["topics"]["transactions"]
    topics = httpx.get(url + "/topics")
    assert topics.status_code == 200
    assert topics.headers["content-type"] == "application/vnd.kafka.v2+json"
    assert {topic, ingest["topics"]["labels"]} <= set(topics.json())
    assert not [t for t in topics.json() if t.startswith("__")]
    meta = httpx.get(url + f"/topics/{topic}").json()
    assert meta["name"] == topic
    assert [p["partition"] for p in meta["partitions"]] == [0, 1, 2]
    assert meta["partitions"][0]["replicas"] == [{"broker": 1, "leader": True, "in_sync": True}]
    assert meta["configs"]["cleanup.policy"] == "delete"
    assert httpx.get(url + f"/topics/{topic}/partitions").json() == meta["partitions"]
    assert httpx.get(url + f"/topics/{topic}/partitions/2").json() == meta["partitions"][2]
    offsets = httpx.get(url + f"/topics/{topic}/partitions/0/offsets").json()
    assert offsets["beginning_offset"] == 0 and offsets["end_offset"] >= 0
    missing = httpx.get(url + "/topics/no-such-topic-here")
    assert missing.status_code == 404
    assert missing.json() == {"error_code": 404, "message": "The specified topic was not found."}
    assert httpx.get(url + f"/topics/{topic}/partitions/7").status_code == 404


def test_consumer_api_is_not_served_and_says_so(ingest):
    response = httpx.post(ingest["url"] + "/consumers/my-group", json={"name": "c1"})
    assert response.status_code == 501
    assert "consumer API is not served" in response.json()["message"]


def test_openapi_documents_what_is_served(ingest):
    doc = httpx.get(ingest["url"] + "/openapi").json()
    assert doc["openapi"].startswith("3.1")
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values() if "operationId" in op}
    assert {
        "send",
        "sendToPartition",
        "listTopics",
        "getTopic",
        "healthy",
        "ready",
        "sendTransactions",
        "sendLabels",
    } <= ops
    send = doc["paths"]["/topics/{topicname}"]["post"]["requestBody"]["content"]
    assert set(send) == {
        "application/vnd.kafka.json.v2+json",
        "application/vnd.kafka.binary.v2+json",
        "application/vnd.kafka.text.v2+json",
    }
    assert httpx.get(ingest["url"] + "/openapi/v3").json() == doc


def test_metrics_count_records_by_topic_and_outcome(ingest):
    topic = ingest["topics"]["transactions"]
    httpx.post(ingest["url"] + "/v1/transactions", json=[transaction(900), transaction(901)], timeout=30)
    text = httpx.get(ingest["url"] + "/metrics").text
    acked = [
        line
        for line in text.splitlines()
        if line.startswith(f'fraudpipe_ingest_records_total{{outcome="acked",topic="{topic}"}}')
    ]
    assert acked and float(acked[0].split()[-1]) >= 2
    for name in (
        "fraudpipe_ingest_request_duration_seconds_bucket",
        "fraudpipe_ingest_produce_duration_seconds_count",
        "fraudpipe_ingest_in_flight_requests",
        "fraudpipe_ingest_queued_records",
        "fraudpipe_ingest_kafka_up 1.0",
        'fraudpipe_ingest_requests_total{code="200",endpoint="/v1/transactions"}',
    ):
        assert name in text, name
