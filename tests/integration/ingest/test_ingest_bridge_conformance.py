"""The Strimzi Kafka Bridge's producer scenarios, against this service and a real broker.

The conformance list is `src/test/java/io/strimzi/kafka/bridge/http/ProducerIT.java` of the
Strimzi Kafka Bridge (release 1.1.0): each test below is the counterpart of the scenario it names,
written anew, with the same expected status codes and error messages; then the records are read
back from the broker. Differences, each deliberate and documented in docs/ingest.md:
- a missing topic is not created (the bridge's test broker auto-creates it): the per-record 404
  says "Topic <t> not present in metadata after <ms> ms.", the bridge's message for that case;
- "<ms>" is this service's metadata wait (5000 ms by default), the bridge test's is its
  max.block.ms (10000 ms).
"""

from __future__ import annotations

import base64
import json
import os
import time

import httpx
import pytest
from ingest_support import BINARY_FMT, JSON_FMT, TEXT_FMT, create_topic, read_topic, topic_exists

pytestmark = pytest.mark.integration

METADATA_WAIT_MS = 5000
SCHEMA_ERROR = "Validation error on: Schema validation error"


def post(
    ingest: dict,
    topic: str,
    body: dict,
    content_type: str = JSON_FMT,
    partition: int | str | None = None,
    params: dict | None = None,
) -> httpx.Response:
    path = f"/topics/{topic}" + (f"/partitions/{partition}" if partition is not None else "")
    return httpx.post(
        ingest["url"] + path,
        content=json.dumps(body),
        headers={"Content-Type": content_type},
        params=params,
        timeout=30,
    )


def assert_ok_one(response: httpx.Response) -> dict:
    """The bridge's verifyOK: 200, one offset entry, offset 0."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.kafka.v2+json"
    offsets = response.json()["offsets"]
    assert len(offsets) == 1
    assert offsets[0]["partition"] is not None
    assert offsets[0]["offset"] == 0
    return offsets[0]


def assert_bad_request(response: httpx.Response, message: str, expected_validation_errors: list[str]) -> None:
    """The bridge's verifyBadRequest: 400, its message, every validation error among the expected."""
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error_code"] == 400
    assert error["message"] == message
    for found in error.get("validation_errors", []):
        assert found in expected_validation_errors
    return error


@pytest.fixture
def topic1(kafka):
    return create_topic(kafka["bootstrap"], 1)


@pytest.fixture
def topic2(kafka):
    return create_topic(kafka["bootstrap"], 2)


@pytest.fixture
def topic3(kafka):
    return create_topic(kafka["bootstrap"], 3)


def test_send_simple_message(ingest, topic1):
    """sendSimpleMessage: a JSON string value, no key, lands at partition 0 offset 0."""
    assert_ok_one(post(ingest, topic1, {"records": [{"value": "message-value"}]}))
    [rec] = read_topic(ingest["bootstrap"], topic1)
    assert json.loads(rec.value) == "message-value"
    assert rec.value == b'"message-value"'
    assert (rec.partition, rec.offset, rec.key) == (0, 0, None)


def test_send_messages_to_multiple_partitions(ingest, topic3):
    """sendMessagesToMultiplePartitions: explicit partitions 0, 1, 2 answered in order, offset 0 each."""
    records = [{"value": "message-value", "partition": p} for p in (0, 1, 2)]
    response = post(ingest, topic3, {"records": records})
    assert response.status_code == 200
    assert response.json()["offsets"] == [{"partition": p, "offset": 0} for p in (0, 1, 2)]
    assert [(r.partition, r.offset) for r in read_topic(ingest["bootstrap"], topic3)] == [(0, 0), (1, 0), (2, 0)]


def test_send_simple_message_to_partition(ingest, topic2):
    """sendSimpleMessageToPartition: `partition` in the record."""
    assert assert_ok_one(post(ingest, topic2, {"records": [{"value": "message-value", "partition": 1}]})) == {
        "partition": 1,
        "offset": 0,
    }
    [rec] = read_topic(ingest["bootstrap"], topic2)
    assert (rec.partition, rec.offset, json.loads(rec.value), rec.key) == (1, 0, "message-value", None)


def test_send_simple_message_with_timestamp(ingest, topic1):
    """sendSimpleMessageWithTimestamp: the record's timestamp is the one sent."""
    timestamp = int(time.time() * 1000) - 12_345
    assert_ok_one(post(ingest, topic1, {"records": [{"value": "message-value", "timestamp": timestamp}]}))
    [rec] = read_topic(ingest["bootstrap"], topic1)
    assert rec.timestamp == timestamp
    assert (rec.partition, rec.offset, rec.key) == (0, 0, None)


def test_send_simple_message_with_key(ingest, topic2):
    """sendSimpleMessageWithKey: a JSON string key, written as JSON."""
    assert_ok_one(post(ingest, topic2, {"records": [{"value": "message-value", "key": "my-key"}]}))
    [rec] = read_topic(ingest["bootstrap"], topic2)
    assert json.loads(rec.key) == "my-key"
    assert json.loads(rec.value) == "message-value"


def test_send_simple_message_with_array_key(ingest, topic2):
    """sendSimpleMessageWithArrayKey: the key's bytes are the compact JSON of the array."""
    key = ["some-element", {"some-field": "element-2"}]
    assert_ok_one(post(ingest, topic2, {"records": [{"value": "message-value", "key": key}]}))
    [rec] = read_topic(ingest["bootstrap"], topic2)
    assert rec.key == b'["some-element",{"some-field":"element-2"}]'
    assert json.loads(rec.value) == "message-value"


def test_send_simple_message_with_array_value(ingest, topic2):
    """sendSimpleMessageWithArrayValue: the value's bytes are the compact JSON of the array."""
    value = ["some-element", {"some-field": "element-2"}]
    assert_ok_one(post(ingest, topic2, {"records": [{"value": value}]}))
    [rec] = read_topic(ingest["bootstrap"], topic2)
    assert rec.value == b'["some-element",{"some-field":"element-2"}]'
    assert rec.key is None


def test_send_binary_message_with_key(ingest, topic2):
    """sendBinaryMessageWithKey (disabled in the bridge's suite, served here): base64 in, exact bytes out."""
    body = {
        "records": [
            {"value": base64.b64encode(b"message-value").decode(), "key": base64.b64encode(b"my-key-bin").decode()}
        ]
    }
    assert_ok_one(post(ingest, topic2, body, BINARY_FMT))
    [rec] = read_topic(ingest["bootstrap"], topic2)
    assert (rec.key, rec.value, rec.offset) == (b"my-key-bin", b"message-value", 0)


def test_send_text_message(ingest, topic1):
    """sendTextMessage: the text format writes the string's bytes, unquoted."""
    assert_ok_one(post(ingest, topic1, {"records": [{"value": "message-value"}]}, TEXT_FMT))
    [rec] = read_topic(ingest["bootstrap"], topic1)
    assert (rec.value, rec.key, rec.partition, rec.offset) == (b"message-value", None, 0, 0)


def test_send_simple_message_with_headers(ingest, topic2):
    """sendSimpleMessageWithHeaders: three headers, a repeated name kept, order kept, values decoded."""
    headers = [
        {"key": "key1", "value": base64.b64encode(b"value1").decode()},
        {"key": "key2", "value": base64.b64encode(b"value2").decode()},
        {"key": "key2", "value": base64.b64encode(b"value2").decode()},
    ]
    assert_ok_one(post(ingest, topic2, {"records": [{"value": "message-value", "headers": headers}]}))
    [rec] = read_topic(ingest["bootstrap"], topic2)
    assert rec.headers == [("key1", b"value1"), ("key2", b"value2"), ("key2", b"value2")]
    assert json.loads(rec.value) == "message-value"


def test_send_periodic_message(ingest, topic1):
    """sendPeriodicMessage: one record per request, spaced out; all arrive with their keys."""
    for i in range(10):
        response = post(ingest, topic1, {"records": [{"value": f"Periodic message [{i}]", "key": f"key-{i}"}]})
        assert response.status_code == 200
        time.sleep(0.05)
    got = read_topic(ingest["bootstrap"], topic1)
    assert len(got) == 10
    for i, rec in enumerate(got):
        assert json.loads(rec.value) == f"Periodic message [{i}]"
        assert json.loads(rec.key) == f"key-{i}"


def test_send_multiple_messages(ingest, topic1):
    """sendMultipleMessages: ten records in one request, ten offsets, read back in order."""
    response = post(ingest, topic1, {"records": [{"value": f"message-value-{i}"} for i in range(10)]})
    assert response.status_code == 200
    offsets = response.json()["offsets"]
    assert len(offsets) == 10
    assert [o["partition"] for o in offsets] == [0] * 10
    assert [o["offset"] for o in offsets] == list(range(10))
    got = read_topic(ingest["bootstrap"], topic1)
    assert [json.loads(r.value) for r in got] == [f"message-value-{i}" for i in range(10)]
    assert all(r.key is None for r in got)


def test_empty_record(ingest, topic1):
    """emptyRecordTest: `{}` is 422, error_code 422."""
    response = post(ingest, topic1, {})
    assert response.status_code == 422
    assert response.json()["error_code"] == 422


def test_send_text_message_with_wrong_value(ingest, topic1):
    """sendTextMessageWithWrongValue: a JSON object as a text value is 422 with the bridge's message."""
    response = post(ingest, topic1, {"records": [{"value": {"message": "Hi, This is kafka bridge"}}]}, TEXT_FMT)
    assert response.status_code == 422
    assert response.json() == {
        "error_code": 422,
        "message": "Because the embedded format is 'text', the value must be a string",
    }


def test_send_text_message_with_wrong_key(ingest, topic1):
    """sendTextMessageWithWrongKey: a JSON object as a text key is 422 with the bridge's message."""
    response = post(
        ingest, topic1, {"records": [{"key": {"my-key": "This is a json key"}, "value": "Text value"}]}, TEXT_FMT
    )
    assert response.status_code == 422
    assert response.json() == {
        "error_code": 422,
        "message": "Because the embedded format is 'text', the key must be a string",
    }
    assert read_topic(ingest["bootstrap"], topic1) == []


def test_send_message_with_null_value(ingest, topic1):
    """sendMessageWithNullValueTest: a null value is a tombstone with its key."""
    assert_ok_one(post(ingest, topic1, {"records": [{"key": "my-key", "value": None}]}))
    [rec] = read_topic(ingest["bootstrap"], topic1)
    assert rec.value is None
    assert json.loads(rec.key) == "my-key"


def test_send_to_non_existing_partitions(ingest, topic3):
    """sendToNonExistingPartitionsTest: partition 1000 of a 3-partition topic is a per-record 404."""
    response = post(ingest, topic3, {"records": [{"value": "Hi, This is kafka bridge", "partition": 1000}]})
    assert response.status_code == 200
    [error] = response.json()["offsets"]
    assert error["error_code"] == 404
    assert error["message"] == (
        f"Partition 1000 of topic {topic3} with partition count 3 is not present in "
        f"metadata after {METADATA_WAIT_MS} ms."
    )


def test_send_to_non_existing_topic(ingest, kafka):
    """sendToNonExistingTopicTest: a per-record 404; the topic is not created."""
    topic = f"it-missing-{os.urandom(4).hex()}"
    response = post(ingest, topic, {"records": [{"value": "Hi, This is kafka bridge", "partition": 1}]})
    assert response.status_code == 200
    [error] = response.json()["offsets"]
    assert error == {
        "error_code": 404,
        "message": f"Topic {topic} not present in metadata after {METADATA_WAIT_MS} ms.",
    }
    assert not topic_exists(kafka["bootstrap"], topic)


def test_send_to_one_partition(ingest, topic3):
    """sendToOnePartitionTest: POST /topics/{t}/partitions/1 writes to partition 1."""
    response = post(ingest, topic3, {"records": [{"value": "Hi, This is kafka bridge"}]}, partition=1)
    assert response.status_code == 200
    assert response.json()["offsets"] == [{"partition": 1, "offset": 0}]
    [rec] = read_topic(ingest["bootstrap"], topic3)
    assert rec.partition == 1


def test_send_to_one_string_partition(ingest, topic3):
    """sendToOneStringPartitionTest: a non-integer partition in the path is the bridge's 400."""
    response = post(ingest, topic3, {"records": [{"value": "Hi, This is kafka bridge"}]}, partition="karel")
    error = assert_bad_request(response, SCHEMA_ERROR, ["Instance type string is invalid. Expected integer"])
    assert error["validation_errors"]


BOTH_PARTITIONS = [
    'Property "records" does not match schema',
    "Items did not match schema",
    "A subschema had errors",
    'Property "partition" does not match additional properties schema',
    'Property "records" does not match additional properties schema',
]


def test_send_to_both_partition(ingest, topic3):
    """sendToBothPartitionTest: `partition` in the body of a to-partition request is the bridge's 400."""
    response = post(ingest, topic3, {"records": [{"value": "Hi, This is kafka bridge", "partition": 2}]}, partition=1)
    error = assert_bad_request(response, SCHEMA_ERROR, BOTH_PARTITIONS)
    assert 'Property "partition" does not match additional properties schema' in error["validation_errors"]


def test_send_message_lacking_required_property(ingest, topic1):
    """sendMessageLackingRequiredProperty: a record without `value` is the bridge's 400."""
    expected = [
        'Property "records" does not match schema',
        "Items did not match schema",
        "A subschema had errors",
        'Instance does not have required property "value"',
        'Property "records" does not match additional properties schema',
    ]
    error = assert_bad_request(post(ingest, topic1, {"records": [{"key": "my-key"}]}), SCHEMA_ERROR, expected)
    assert 'Instance does not have required property "value"' in error["validation_errors"]


def test_send_message_with_unknown_property(ingest, topic1):
    """sendMessageWithUnknownProperty: an unknown record property is the bridge's 400, naming it."""
    expected = [
        'Property "records" does not match schema',
        "Items did not match schema",
        "A subschema had errors",
        'Property "foo" does not match additional properties schema',
        'Property "records" does not match additional properties schema',
    ]
    response = post(ingest, topic1, {"records": [{"value": "message-value", "foo": "unknown property"}]})
    error = assert_bad_request(response, SCHEMA_ERROR, expected)
    assert 'Property "foo" does not match additional properties schema' in error["validation_errors"]
    assert read_topic(ingest["bootstrap"], topic1) == []


def test_send_multiple_records_with_one_invalid_partition(ingest, topic3):
    """sendMultipleRecordsWithOneInvalidPartitionTest: 200; the good record written, the other a 404."""
    records = [
        {"value": "Hi, This is kafka bridge", "partition": 1},
        {"value": "Hi, This is kafka bridgeinvalid", "partition": 500},
    ]
    response = post(ingest, topic3, {"records": records})
    assert response.status_code == 200
    first, second = response.json()["offsets"]
    assert first == {"partition": 1, "offset": 0}
    assert second["error_code"] == 404
    assert second["message"] == (
        f"Partition 500 of topic {topic3} with partition count 3 is not present in "
        f"metadata after {METADATA_WAIT_MS} ms."
    )
    assert [(r.partition, json.loads(r.value)) for r in read_topic(ingest["bootstrap"], topic3)] == [
        (1, "Hi, This is kafka bridge")
    ]


def test_json_payload(ingest, topic3):
    """jsonPayloadTest: to partition 0: `partition` in the body refused, then a string and an object value."""
    bad = post(
        ingest,
        topic3,
        {"records": [{"value": "Hello from the other side", "key": "message-key", "partition": 0}]},
        partition=0,
    )
    assert_bad_request(bad, SCHEMA_ERROR, BOTH_PARTITIONS)
    second = post(
        ingest, topic3, {"records": [{"value": "Hello from the other side", "key": "message-key"}]}, partition=0
    )
    assert second.status_code == 200
    assert second.json()["offsets"] == [{"partition": 0, "offset": 0}]
    third = post(
        ingest, topic3, {"records": [{"key": "message-key", "value": {"first-object": "hello-there"}}]}, partition=0
    )
    assert third.status_code == 200
    assert third.json()["offsets"] == [{"partition": 0, "offset": 1}]
    got = read_topic(ingest["bootstrap"], topic3)
    assert [r.value for r in got] == [b'"Hello from the other side"', b'{"first-object":"hello-there"}']


def test_send_async_messages(ingest, topic1):
    """sendAsyncMessages: async=true is 204 with no body; the records land in order."""
    response = post(
        ingest, topic1, {"records": [{"value": f"message-value-{i}"} for i in range(10)]}, params={"async": "true"}
    )
    assert response.status_code == 204
    assert response.content == b""
    deadline = time.monotonic() + 20
    while len(got := read_topic(ingest["bootstrap"], topic1)) < 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [json.loads(r.value) for r in got] == [f"message-value-{i}" for i in range(10)]


def test_send_with_wrong_async(ingest, topic1):
    """sendWithWrongAsync: async=wrong is the bridge's 400."""
    response = post(ingest, topic1, {"records": [{"value": "message-value"}]}, params={"async": "wrong"})
    assert response.status_code == 400
    error = response.json()
    assert error["error_code"] == 400
    assert SCHEMA_ERROR in error["message"]
    assert "Instance type string is invalid. Expected boolean" in error["validation_errors"]


def test_send_simple_message_with_wrong_content_type(ingest, topic1):
    """sendSimpleMessageWithWrongContentType: an unknown content type is the bridge's 400."""
    response = post(ingest, topic1, {"records": [{"value": "message-value"}]}, "bad-content-type")
    assert response.status_code == 400
    error = response.json()
    assert error["error_code"] == 400
    assert "Validation error on: The format of the request body is not supported" in error["message"]


def _dynamic_record(content_type: str) -> dict:
    if content_type == JSON_FMT:
        return {"key": {"id": 123}, "value": {"id": 10, "price": 150, "description": "Hello world"}}
    if content_type == BINARY_FMT:
        return {"key": base64.b64encode(os.urandom(128)).decode(), "value": base64.b64encode(os.urandom(256)).decode()}
    return {"key": "key", "value": "value"}


@pytest.mark.parametrize(
    "first,second",
    [(a, b) for a in (JSON_FMT, BINARY_FMT, TEXT_FMT) for b in (JSON_FMT, BINARY_FMT, TEXT_FMT) if a != b],
)
def test_dynamic_content_type_handling(ingest, kafka, first, second):
    """dynamicContentTypeHandling: one topic, two requests in two different formats, both 200."""
    topic = create_topic(kafka["bootstrap"], 1)
    for content_type in (first, second):
        record = _dynamic_record(content_type)
        assert post(ingest, topic, {"records": [record]}, content_type).status_code == 200
    got = read_topic(ingest["bootstrap"], topic)
    assert len(got) == 2
    for rec, content_type in zip(got, (first, second)):
        sent = _dynamic_record(content_type) if content_type != BINARY_FMT else None
        if content_type == JSON_FMT:
            assert json.loads(rec.value) == sent["value"] and json.loads(rec.key) == sent["key"]
        elif content_type == TEXT_FMT:
            assert (rec.key, rec.value) == (b"key", b"value")
        else:
            assert (len(rec.key), len(rec.value)) == (128, 256)
