"""The service's HTTP edges that need no broker: limits, content types, validation, and the 503 when
Kafka is unreachable (the app is driven in-process, its producer never connected)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from fraudpipeline.ingest.app import create_app
from fraudpipeline.ingest.bridge import BridgeError
from fraudpipeline.ingest.settings import IngestSettings
from fraudpipeline.spec import parse_pipeline

TX = {
    "transaction_id": "tx-1",
    "timestamp": "2018-07-25T13:45:00Z",
    "customer_id": "c-1",
    "terminal_id": "t-1",
    "amount": 5.0,
}


def settings(**overrides) -> IngestSettings:
    base = {
        "pipeline": "fraud/payments",
        "bootstrap_servers": "127.0.0.1:9",
        "topics": {"transactions": "fraud.payments.transactions", "labels": "fraud.payments.labels"},
    }
    return IngestSettings(**{**base, **overrides})


def call(method: str, path: str, s: IngestSettings | None = None, **kwargs) -> httpx.Response:
    app = create_app(s or settings())

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_settings_come_from_the_fraudpipeline_file():
    doc = {
        "apiVersion": "frauddetect.dev/v1alpha1",
        "kind": "FraudPipeline",
        "metadata": {"name": "payments", "namespace": "fraud"},
        "spec": {
            "kafka": {"cluster": "main", "bridge": {"port": 9090}, "topics": {"labels": {"name": "custom-labels"}}},
            "model": {"image": "i", "modelTag": "fraud-xgb:v1"},
            "stream": {"image": "s"},
        },
    }
    s = IngestSettings.from_pipeline(parse_pipeline(doc))
    assert s.topics == {"transactions": "fraud.payments.transactions", "labels": "custom-labels"}
    assert s.port == 9090
    assert s.bootstrap_servers == "main-kafka-bootstrap.fraud.svc:9092"
    assert IngestSettings.from_pipeline(parse_pipeline(doc), bootstrap_servers="127.0.0.1:1", port=1).port == 1


def test_kafka_unreachable_is_503_with_retry_after_never_200():
    response = call("POST", "/v1/transactions", json=TX)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error_code"] == 503
    assert "send it again after the Retry-After delay" in response.json()["message"]
    bridge = call(
        "POST",
        "/topics/t",
        content=b'{"records":[{"value":"v"}]}',
        headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
    )
    assert bridge.status_code == 503 and "retry-after" in bridge.headers
    assert bridge.headers["content-type"] == "application/vnd.kafka.v2+json"


def test_invalid_records_are_422_before_kafka_is_asked():
    response = call("POST", "/v1/transactions", json=[TX, {**TX, "customer_id": ""}])
    assert response.status_code == 422
    [message] = response.json()["validation_errors"]
    assert message.startswith("record 1: invalid transaction: field 'customer_id' ")
    assert message.endswith('expected the card identifier: a non-empty string or integer, e.g. "c-1234"')


def test_record_timestamps_are_the_time_received_unless_event_time_is_asked_for():
    from fraudpipeline.ingest.service import IngestService

    received = IngestService(settings())._validated("transactions", [TX], single=True)
    assert received == [(b"c-1", json.dumps(TX, separators=(",", ":")).encode(), -1, 0, None)]  # 0: the producer's now
    [event] = IngestService(settings(record_timestamp="event"))._validated("transactions", [TX], single=True)
    assert event[3] == 1532526300000
    old = {**TX, "timestamp": "1969-12-31T23:59:59Z"}
    assert IngestService(settings())._validated("transactions", [old], single=True)[0][3] == 0
    with pytest.raises(BridgeError, match="before 1970"):
        IngestService(settings(record_timestamp="event"))._validated("transactions", [old], single=True)
    [label] = IngestService(settings(record_timestamp="event"))._validated(
        "labels",
        [
            {
                "transaction_id": "tx-1",
                "customer_id": "c-1",
                "terminal_id": "t-1",
                "timestamp": TX["timestamp"],
                "fraud": 1,
            }
        ],
        single=True,
    )
    assert (label[0], label[3]) == (b"t-1", 0)  # labels: when they became known


def test_every_record_must_be_an_object():
    response = call("POST", "/v1/transactions", json=[json.dumps(TX)])  # a string holding JSON is not a record
    assert response.status_code == 422
    assert response.json()["validation_errors"] == [
        "record 0: invalid transaction: field '(document)' the record must be a JSON object"
    ]


def test_bodies_over_the_limit_are_413_by_length_or_by_count():
    s = settings(max_body_bytes=2048, max_records=3)
    big = call("POST", "/v1/transactions", s, json=[{**TX, "note": "x" * 3000}])
    assert big.status_code == 413
    assert big.json()["message"].startswith("The request body is larger than the limit of 2048 bytes")
    many = call("POST", "/v1/transactions", s, json=[TX] * 4)
    assert many.status_code == 413
    assert "4 records, more than the limit of 3" in many.json()["message"]

    async def chunks():  # no Content-Length: counted while reading
        for _ in range(5):
            yield b"x" * 1000

    chunked = call(
        "POST", "/topics/t", s, content=chunks(), headers={"Content-Type": "application/vnd.kafka.json.v2+json"}
    )
    assert chunked.status_code == 413


def test_v1_wants_json_and_says_how():
    response = call("POST", "/v1/labels", content=json.dumps(TX), headers={"Content-Type": "text/csv"})
    assert response.status_code == 415
    assert response.json()["message"] == (
        "Unsupported Media Type: send the labels as JSON with 'Content-Type: application/json'"
    )


def test_readiness_names_what_is_missing():
    response = call("GET", "/readyz")
    assert response.status_code == 503
    state = response.json()
    assert not state["ready"]
    assert "the transactions topic fraud.payments.transactions does not exist" in state["reasons"]
    assert call("GET", "/ready").status_code == 500
    assert call("GET", "/livez").status_code == 200
    assert call("GET", "/healthy").status_code == 200


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/topics", 405),
        ("POST", "/consumers/g", 501),
        ("POST", "/admin/topics", 501),
    ],
)
def test_errors_outside_the_produce_api_keep_the_bridge_shape(method, path, status):
    response = call(method, path, json={})
    assert response.status_code == status
    assert set(response.json()) == {"error_code", "message"}
    assert response.json()["error_code"] == status


def test_openapi_is_served_and_lists_the_produce_formats():
    doc = call("GET", "/openapi").json()
    content = doc["paths"]["/topics/{topicname}/partitions/{partitionid}"]["post"]["requestBody"]["content"]
    assert content["application/vnd.kafka.text.v2+json"]["schema"] == {
        "$ref": "#/components/schemas/ProducerRecordToPartitionList"
    }
    assert "ProducerRecordToPartitionList" in doc["components"]["schemas"]
    assert "partition" not in doc["components"]["schemas"]["ProducerRecordToPartition"]["properties"]
