"""The Strimzi Kafka Bridge produce protocol (release 1.1.0): request bodies to Kafka records.

`POST /topics/{topic}` and `POST /topics/{topic}/partitions/{partition}` carry
`{"records": [{"key", "value", "partition", "timestamp", "headers"}]}` in one of three embedded
formats, named by the Content-Type:

- `application/vnd.kafka.json.v2+json`: key and value are any JSON, written as compact JSON bytes
  (a string key "c-1" becomes the six bytes `"c-1"`, quotes included, as on the bridge);
- `application/vnd.kafka.binary.v2+json`: key and value are base64 text of the exact bytes;
- `application/vnd.kafka.text.v2+json`: key and value are strings, written as their UTF-8 bytes.

Errors keep the bridge's shape `{"error_code", "message"[, "validation_errors"]}`, status codes and
messages, as the bridge's own integration tests assert them: a body that breaks the bridge's
OpenAPI schema is 400 "Validation error on: Schema validation error" with the validator's findings
in `validation_errors`; an unknown content type is 400 "Validation error on: The format of the
request body is not supported"; a record its format cannot carry is 422.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any

import orjson

FORMATS = {
    "application/vnd.kafka.json.v2+json": "json",
    "application/vnd.kafka.binary.v2+json": "binary",
    "application/vnd.kafka.text.v2+json": "text",
}
# What the bridge answers with, for offsets, metadata and errors alike.
RESPONSE_CONTENT_TYPE = "application/vnd.kafka.v2+json"
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# (key bytes | None, value bytes | None, partition (-1: the partitioner's choice), timestamp ms (0: now),
#  headers | None): the arguments of one Producer.produce call.
Record = tuple[bytes | None, bytes | None, int, int, list[tuple[str, bytes]] | None]

SCHEMA_ERROR = "Validation error on: Schema validation error"
UNSUPPORTED_FORMAT = "Validation error on: The format of the request body is not supported"
MISSING_BODY = "Validation error on: The related request does not contain the required body."

# orjson reads integers beyond 64 bits as floats; the standard library keeps them exact. A run of
# 19 digits anywhere (strings included) sends the body to the standard library's parser.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class BridgeError(Exception):
    """An error answer in the bridge's shape; `retry_after` (seconds) adds a Retry-After header."""

    def __init__(
        self, status: int, message: str, validation_errors: list[str] | None = None, retry_after: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.validation_errors = validation_errors
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": self.status, "message": self.message}
        if self.validation_errors is not None:
            out["validation_errors"] = self.validation_errors
        return out

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


def schema_error(*errors: str) -> BridgeError:
    return BridgeError(400, SCHEMA_ERROR, list(errors))


def media_type(header: str | bytes | None) -> str:
    """The Content-Type without parameters, lower case ("" when absent)."""
    if not header:
        return ""
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    return header.split(";", 1)[0].strip().lower()


def embedded_format(content_type: str | bytes | None) -> str:
    fmt = FORMATS.get(media_type(content_type))
    if fmt is None:
        raise BridgeError(400, UNSUPPORTED_FORMAT)
    return fmt


def loads(body: bytes) -> Any:
    """Parse JSON; integers too large for 64 bits stay exact (the standard library's parser)."""
    if body.translate(_DIGITS_TO_ZERO).find(_NINETEEN_DIGITS) < 0:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # e.g. an escaped lone surrogate, which orjson refuses and JSON allows
    return json.loads(body)


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, as the bridge's Jackson writes them."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, lone surrogates
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        try:
            return text.encode()
        except UnicodeEncodeError:
            return json.dumps(value, separators=(",", ":")).encode()


def parse_body(body: bytes) -> Any:
    if not body:
        raise BridgeError(400, MISSING_BODY)
    try:
        return loads(body)
    except (ValueError, RecursionError) as exc:
        raise BridgeError(400, f"Validation error on: The request body is not valid JSON: {exc}") from None


def parse_partition_param(raw: str) -> int:
    """The `{partitionid}` path parameter: an integer, or the bridge's 400."""
    if _INTEGER.fullmatch(raw) is None:
        raise schema_error("Instance type string is invalid. Expected integer")
    return int(raw)


def parse_async_param(query: dict[str, list[str]]) -> bool:
    values = query.get("async")
    if not values:
        return False
    raw = values[-1]
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise schema_error("Instance type string is invalid. Expected boolean")


# ----------------------------------------------------------------------------------- validation

_JSON_TYPES = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def _type_name(value: Any) -> str:
    for cls, name in _JSON_TYPES:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _wrong_type(value: Any, expected: str) -> str:
    return f"Instance type {_type_name(value)} is invalid. Expected {expected}"


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_VALUE_TYPES = frozenset((dict, list, str, type(None)))
_KEY_TYPES = frozenset((dict, list, str))
_RECORD_FIELDS = frozenset(("value", "key", "partition", "timestamp", "headers"))
_PARTITION_RECORD_FIELDS = frozenset(("value", "key", "headers"))


def _record_errors(rec: Any, allowed: frozenset[str]) -> list[str]:
    """What the bridge's schema validator says about one item of `records` (empty: valid)."""
    if not isinstance(rec, dict):
        return [_wrong_type(rec, "object")]
    errors: list[str] = []
    for name in rec:
        if name not in allowed:
            errors.append(f'Property "{name}" does not match additional properties schema')
    if "value" not in rec:
        errors.append('Instance does not have required property "value"')
    else:
        value = rec["value"]
        if not isinstance(value, (dict, list, str)) and value is not None:
            errors += [
                'Property "value" does not match schema',
                f"Instance type {_type_name(value)} does not match any of array, object, string, null",
            ]
    if "key" in rec:
        key = rec["key"]
        if not isinstance(key, (dict, list, str)):
            errors += [
                'Property "key" does not match schema',
                f"Instance type {_type_name(key)} does not match any of array, object, string",
            ]
    for name, top, fmt in (("partition", INT32_MAX, "int32"), ("timestamp", INT64_MAX, "int64")):
        if name in rec and name in allowed:
            number = rec[name]
            if not _is_integer(number):
                errors += [f'Property "{name}" does not match schema', _wrong_type(number, "integer")]
            elif not -top - 1 <= number <= top:
                errors += [f'Property "{name}" does not match schema', f'Instance does not match format "{fmt}"']
    if "headers" in rec:
        headers = rec["headers"]
        if not isinstance(headers, list):
            errors += ['Property "headers" does not match schema', _wrong_type(headers, "array")]
        else:
            for header in headers:
                if not isinstance(header, dict):
                    errors += ['Property "headers" does not match schema', _wrong_type(header, "object")]
                    continue
                for name in ("key", "value"):
                    if name not in header:
                        errors += [
                            'Property "headers" does not match schema',
                            f'Instance does not have required property "{name}"',
                        ]
                    elif not isinstance(header[name], str):
                        errors += ['Property "headers" does not match schema', _wrong_type(header[name], "string")]
    return errors


def validate(doc: Any, to_partition: bool) -> list[dict[str, Any]]:
    """The records of a ProducerRecordList (or ...ToPartitionList), or the bridge's 400.

    A body without `records` passes the schema (the property is optional) but carries nothing to
    send: the bridge answers that with 422, and so does this.
    """
    if not isinstance(doc, dict):
        raise schema_error(_wrong_type(doc, "object"))
    errors = [f'Property "{name}" does not match additional properties schema' for name in doc if name != "records"]
    if errors:
        raise schema_error(*errors)
    if "records" not in doc:
        raise BridgeError(422, 'The request body has no records: send {"records": [{"value": ...}]}')
    records = doc["records"]
    if not isinstance(records, list):
        raise schema_error('Property "records" does not match schema', _wrong_type(records, "array"))
    allowed = _PARTITION_RECORD_FIELDS if to_partition else _RECORD_FIELDS
    for rec in records:
        if (
            type(rec) is dict
            and rec.keys() <= allowed
            and type(rec.get("value", 0)) in _VALUE_TYPES
            and type(rec.get("key", "")) in _KEY_TYPES
            and "partition" not in rec
            and "timestamp" not in rec
            and "headers" not in rec
        ):
            continue  # the common record: {"value"[, "key"]}, nothing more to check
        found = _record_errors(rec, allowed)
        if found:
            raise schema_error('Property "records" does not match schema', "Items did not match schema", *found)
    return records


# ----------------------------------------------------------------------------------- conversion


def _b64(text: str, what: str) -> bytes:
    raw = text.encode("ascii", "strict") if text.isascii() else None
    if raw is None:
        raise BridgeError(422, f"Because the embedded format is 'binary', the {what} must be base64 text")
    raw += b"=" * (-len(raw) % 4)  # padding is optional, as for Java's decoder
    try:
        return binascii.a2b_base64(raw, strict_mode=True)
    except binascii.Error:
        raise BridgeError(422, f"Because the embedded format is 'binary', the {what} must be base64 text") from None


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise BridgeError(422, f"The {what} is not valid Unicode text (a lone surrogate)") from None


def _headers(rec: dict[str, Any]) -> list[tuple[str, bytes]] | None:
    headers = rec.get("headers")
    if not headers:
        return None
    out = []
    for header in headers:
        name = header["key"]
        try:
            value = binascii.a2b_base64(
                header["value"].encode("ascii") + b"=" * (-len(header["value"]) % 4), strict_mode=True
            )
        except (binascii.Error, UnicodeEncodeError):
            raise BridgeError(422, f"The value of header '{name}' must be base64 text") from None
        out.append((name, value))
    return out


def _extras(rec: dict[str, Any], partition: int | None) -> tuple[int, int, list[tuple[str, bytes]] | None]:
    """(partition, timestamp, headers) of a record that has any of them."""
    timestamp = rec.get("timestamp")
    if timestamp is None:
        timestamp = 0
    elif timestamp < 0:
        raise BridgeError(422, f"Invalid timestamp: {timestamp}. Timestamp should always be non-negative or null.")
    part = partition if partition is not None else rec.get("partition", -1)
    return part, timestamp, _headers(rec) if "headers" in rec else None


def _json_bytes(value: Any) -> bytes:
    try:
        return _orjson_dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return dumps(value)


_orjson_dumps = orjson.dumps
_PLAIN = frozenset(("value", "key"))


def to_records(records: list[dict[str, Any]], fmt: str, partition: int | None) -> list[Record]:
    """Kafka records for validated bridge records, or the bridge's 422 for one its format cannot carry."""
    out: list[Record] = []
    append = out.append
    default_part = -1 if partition is None else partition
    for rec in records:
        key = rec.get("key")
        value = rec["value"]
        if fmt == "json":
            kb = None if key is None else _json_bytes(key)
            vb = None if value is None else _json_bytes(value)
        elif fmt == "binary":
            if key is not None and not isinstance(key, str):
                raise BridgeError(422, "Because the embedded format is 'binary', the key must be base64 text")
            if value is not None and not isinstance(value, str):
                raise BridgeError(422, "Because the embedded format is 'binary', the value must be base64 text")
            kb = None if key is None else _b64(key, "key")
            vb = None if value is None else _b64(value, "value")
        else:  # text
            if key is not None and not isinstance(key, str):
                raise BridgeError(422, "Because the embedded format is 'text', the key must be a string")
            if not isinstance(value, str):
                raise BridgeError(422, "Because the embedded format is 'text', the value must be a string")
            kb = None if key is None else _utf8(key, "key")
            vb = _utf8(value, "value")
        if rec.keys() <= _PLAIN:
            append((kb, vb, default_part, 0, None))
        else:
            append((kb, vb, *_extras(rec, partition)))
    return out


def decode(body: bytes, content_type: str | bytes | None, partition: int | None) -> list[Record]:
    """Request body -> Kafka records (the whole bridge request pipeline before producing)."""
    fmt = embedded_format(content_type)
    records = validate(parse_body(body), to_partition=partition is not None)
    return to_records(records, fmt, partition)


# ------------------------------------------------------------------------------------- answers


def missing_topic_message(topic: str, waited_ms: int) -> str:
    return f"Topic {topic} not present in metadata after {waited_ms} ms."


def missing_partition_message(topic: str, partition: int, count: int, waited_ms: int) -> str:
    return (
        f"Partition {partition} of topic {topic} with partition count {count} is not present in metadata "
        f"after {waited_ms} ms."
    )


def offsets_body(results: list[tuple[int, int] | tuple[int, str]]) -> bytes:
    """`{"offsets": [...]}`: (partition, offset) for a written record, (error_code, message) for a refused one."""
    entries = []
    for first, second in results:
        if isinstance(second, str):
            entries.append({"error_code": first, "message": second})
        else:
            entries.append({"partition": first, "offset": second})
    return orjson.dumps({"offsets": entries})
