"""The bridge produce protocol, request body to Kafka records: formats, schema errors, 422s."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudpipeline.ingest import bridge
from fraudpipeline.ingest.bridge import BridgeError, decode

JSON_FMT = "application/vnd.kafka.json.v2+json"
BINARY_FMT = "application/vnd.kafka.binary.v2+json"
TEXT_FMT = "application/vnd.kafka.text.v2+json"


def body(*records) -> bytes:
    return json.dumps({"records": list(records)}).encode()


def error(raw: bytes, content_type: str = JSON_FMT, partition: int | None = None) -> BridgeError:
    with pytest.raises(BridgeError) as exc:
        decode(raw, content_type, partition)
    return exc.value


def test_json_format_writes_compact_json_and_keeps_partition_timestamp_headers():
    raw = body(
        {
            "key": ["a", {"b": 1}],
            "value": {"x": 1.5, "y": "é"},
            "partition": 2,
            "timestamp": 1591897790000,
            "headers": [{"key": "h", "value": base64.b64encode(b"v1").decode()}, {"key": "h", "value": "djI"}],
        }
    )
    [(key, value, partition, ts, headers)] = decode(raw, JSON_FMT, None)
    assert key == b'["a",{"b":1}]'
    assert value == '{"x":1.5,"y":"é"}'.encode()
    assert (partition, ts) == (2, 1591897790000)
    assert headers == [("h", b"v1"), ("h", b"v2")]  # base64 padding is optional, as for Java's decoder


def test_json_format_string_key_keeps_its_quotes_and_null_value_is_a_tombstone():
    [(key, value, partition, ts, headers)] = decode(body({"key": "c-1", "value": None}), JSON_FMT, None)
    assert (key, value, partition, ts, headers) == (b'"c-1"', None, -1, 0, None)


def test_big_integers_stay_exact():
    [(_, value, *_)] = decode(b'{"records":[{"value":{"n":123456789012345678901234567890}}]}', JSON_FMT, None)
    assert value == b'{"n":123456789012345678901234567890}'


def test_binary_format_decodes_base64_and_refuses_the_rest():
    [(key, value, *_)] = decode(
        body({"key": base64.b64encode(b"\x00k").decode(), "value": base64.b64encode(b"\xffv").decode()}),
        BINARY_FMT,
        None,
    )
    assert (key, value) == (b"\x00k", b"\xffv")
    bad = error(body({"value": "not base64!"}), BINARY_FMT)
    assert (bad.status, bad.message) == (422, "Because the embedded format is 'binary', the value must be base64 text")
    assert error(body({"value": {"a": 1}}), BINARY_FMT).status == 422


def test_text_format_the_bridge_messages():
    [(key, value, *_)] = decode(body({"key": "k", "value": "plain text"}), TEXT_FMT, None)
    assert (key, value) == (b"k", b"plain text")
    value_error = error(body({"value": {"message": "hi"}}), TEXT_FMT)
    assert (value_error.status, value_error.message) == (
        422,
        "Because the embedded format is 'text', the value must be a string",
    )
    key_error = error(body({"key": {"k": 1}, "value": "v"}), TEXT_FMT)
    assert key_error.message == "Because the embedded format is 'text', the key must be a string"


def test_content_type_parameters_are_ignored_and_unknown_types_are_the_bridges_400():
    assert decode(body({"value": "v"}), JSON_FMT + "; charset=utf-8", None)
    for content_type in ("application/json", "bad-content-type", None):
        exc = error(body({"value": "v"}), content_type)
        assert exc.payload() == {
            "error_code": 400,
            "message": "Validation error on: The format of the request body is not supported",
        }


@pytest.mark.parametrize(
    "record,partition,expected",
    [
        ({"key": "k"}, None, 'Instance does not have required property "value"'),
        ({"value": "v", "foo": 1}, None, 'Property "foo" does not match additional properties schema'),
        ({"value": "v", "partition": 1}, 0, 'Property "partition" does not match additional properties schema'),
        ({"value": "v", "timestamp": 1}, 0, 'Property "timestamp" does not match additional properties schema'),
        ({"value": "v", "partition": "1"}, None, "Instance type string is invalid. Expected integer"),
        ({"value": "v", "partition": True}, None, "Instance type boolean is invalid. Expected integer"),
        ({"value": "v", "partition": 2**31}, None, 'Instance does not match format "int32"'),
        ({"value": "v", "timestamp": -(2**63) - 1}, None, 'Instance does not match format "int64"'),
        ({"value": 5}, None, 'Property "value" does not match schema'),
        ({"value": "v", "key": None}, None, 'Property "key" does not match schema'),
        ({"value": "v", "headers": [{"key": "h"}]}, None, 'Instance does not have required property "value"'),
    ],
)
def test_schema_errors_are_the_bridges_400(record, partition, expected):
    exc = error(body(record), JSON_FMT, partition)
    assert exc.status == 400
    assert exc.message == "Validation error on: Schema validation error"
    assert expected in exc.validation_errors
    assert exc.validation_errors[:2] == ['Property "records" does not match schema', "Items did not match schema"]


def test_no_records_is_422_and_empty_records_is_nothing():
    assert error(b"{}").status == 422
    assert decode(b'{"records": []}', JSON_FMT, None) == []
    assert error(b'{"records": [], "extra": 1}').validation_errors == [
        'Property "extra" does not match additional properties schema'
    ]
    assert error(b"[]").validation_errors == ["Instance type array is invalid. Expected object"]


def test_unreadable_bodies():
    assert error(b"").message == "Validation error on: The related request does not contain the required body."
    assert error(b'{"records": [').message.startswith("Validation error on: The request body is not valid JSON")


def test_negative_timestamp_is_422_with_javas_message():
    exc = error(body({"value": "v", "timestamp": -5}))
    assert (exc.status, exc.message) == (422, "Invalid timestamp: -5. Timestamp should always be non-negative or null.")


def test_path_and_query_parameters():
    assert bridge.parse_partition_param("12") == 12
    assert bridge.parse_partition_param("-1") == -1
    for raw in ("karel", "1.5", "", " 1", "+1"):
        with pytest.raises(BridgeError) as exc:
            bridge.parse_partition_param(raw)
        assert exc.value.validation_errors == ["Instance type string is invalid. Expected integer"]
    assert bridge.parse_async_param({"async": ["true"]}) is True
    assert bridge.parse_async_param({}) is False
    with pytest.raises(BridgeError) as exc:
        bridge.parse_async_param({"async": ["wrong"]})
    assert exc.value.validation_errors == ["Instance type string is invalid. Expected boolean"]


def test_offsets_body_mixes_offsets_and_errors_in_order():
    out = json.loads(bridge.offsets_body([(0, 5), (404, "Topic t not present in metadata after 5000 ms."), (1, 0)]))
    assert out == {
        "offsets": [
            {"partition": 0, "offset": 5},
            {"error_code": 404, "message": "Topic t not present in metadata after 5000 ms."},
            {"partition": 1, "offset": 0},
        ]
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(
        st.dictionaries(st.text(max_size=5), json_values, max_size=4), st.lists(json_values, max_size=4), st.text()
    )
)
def test_any_json_value_round_trips(value):
    """Whatever JSON a client sends as a value, the record holds the same JSON."""
    [(_, written, *_)] = decode(json.dumps({"records": [{"value": value}]}).encode(), JSON_FMT, None)
    assert json.loads(written) == value


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), key=st.binary(max_size=50))
def test_any_bytes_round_trip_in_the_binary_format(data, key):
    raw = body({"key": base64.b64encode(key).decode(), "value": base64.b64encode(data).decode()})
    [(k, v, *_)] = decode(raw, BINARY_FMT, None)
    assert (k, v) == (key, data)
