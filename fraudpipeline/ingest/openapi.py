"""The service's own OpenAPI document (served at /openapi): the bridge operations it serves, and /v1.

The models describe the Strimzi Kafka Bridge's wire shapes as this service reads and writes them;
they exist for the document only (the hot path reads bodies itself, see `bridge.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, RootModel

from fraudpipeline.ingest.bridge import FORMATS, RESPONSE_CONTENT_TYPE

DESCRIPTION = """\
An HTTP front door to a FraudPipeline's Kafka topics.

- The Strimzi Kafka Bridge produce API (release 1.1.0): `POST /topics/{topicname}` and
  `POST /topics/{topicname}/partitions/{partitionid}` with the json, binary and text embedded
  formats, topic metadata, `/healthy`, `/ready`. The consumer API is not served (501).
- `POST /v1/transactions` and `POST /v1/labels`: the pipeline's records, validated, keyed by card
  (transactions) or terminal (labels), written to the pipeline's topics.

Every produce answer comes after the broker acknowledged each record (acks=all, idempotent
producer). When Kafka is down the answer is 503 with Retry-After.
"""

JsonValue = dict[str, Any] | list[Any] | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KafkaHeader(BaseModel):
    key: str = Field(description="Header name.")
    value: str = Field(description="Header value: base64 of its bytes.", json_schema_extra={"format": "byte"})


class ProducerRecord(_Strict):
    value: JsonValue | None = Field(
        description="The value: JSON (json format), base64 text (binary) or text (text); null writes a tombstone."
    )
    key: JsonValue | None = Field(None, description="The key, in the same format as the value. Absent: no key.")
    partition: int | None = Field(
        None, ge=0, le=2**31 - 1, description="Absent: the partitioner (murmur2 of the key, as Java's) chooses."
    )
    timestamp: int | None = Field(None, ge=0, description="Record timestamp, ms since the epoch. Absent: now.")
    headers: list[KafkaHeader] | None = Field(None, description="Record headers, in order, repeats allowed.")


class ProducerRecordToPartition(_Strict):
    value: JsonValue | None = Field(description="As in ProducerRecord.")
    key: JsonValue | None = Field(None, description="As in ProducerRecord.")
    headers: list[KafkaHeader] | None = Field(None, description="As in ProducerRecord.")


class ProducerRecordList(_Strict):
    records: list[ProducerRecord] = Field(description="The records, sent in this order.")


class ProducerRecordToPartitionList(_Strict):
    records: list[ProducerRecordToPartition] = Field(description="The records, sent in this order.")


class OffsetRecordSent(BaseModel):
    partition: int = Field(description="Partition the record was written to.")
    offset: int = Field(description="Its offset there.")


class Error(BaseModel):
    error_code: int = Field(description="HTTP status code (of the request, or of one record inside `offsets`).")
    message: str = Field(description="What went wrong and, where it can, how to fix it.")
    validation_errors: list[str] | None = Field(None, description="Every finding, when the body was checked.")


class OffsetRecordSentList(BaseModel):
    offsets: list[OffsetRecordSent | Error] = Field(description="One entry per record, in request order.")


class Replica(BaseModel):
    broker: int
    leader: bool
    in_sync: bool


class PartitionMetadata(BaseModel):
    partition: int
    leader: int
    replicas: list[Replica]


class TopicMetadata(BaseModel):
    name: str
    configs: dict[str, str]
    partitions: list[PartitionMetadata]


class OffsetsSummary(BaseModel):
    beginning_offset: int
    end_offset: int


class BridgeInfo(BaseModel):
    bridge_version: str = Field(description="The Strimzi Kafka Bridge release whose API this follows.")
    service: str
    version: str
    pipeline: str


class TopicList(RootModel[list[str]]):
    """Topic names."""


class PartitionList(RootModel[list[PartitionMetadata]]):
    """A topic's partitions."""


_MODELS: list[type[BaseModel]] = [
    ProducerRecordList,
    ProducerRecordToPartitionList,
    OffsetRecordSentList,
    Error,
    TopicMetadata,
    OffsetsSummary,
    TopicList,
    PartitionList,
    PartitionMetadata,
]


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def ok(model: type[BaseModel], *errors: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {RESPONSE_CONTENT_TYPE: {"schema": _ref(model)}}}
    }
    for code in errors:
        out[code] = {"description": "Not found", "content": {RESPONSE_CONTENT_TYPE: {"schema": _ref(Error)}}}
    return out


def _error(description: str, media: str = RESPONSE_CONTENT_TYPE) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": _ref(Error)}}}


def produce_body(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {ct: {"schema": _ref(schema)} for ct in FORMATS}},
        "parameters": [
            {
                "name": "async",
                "in": "query",
                "required": False,
                "schema": {"type": "boolean"},
                "description": "true: answer 204 once the records are queued, without waiting for "
                "the broker (no offsets).",
            }
        ],
    }


def produce_responses() -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "Offsets (or a per-record error: 404 no such topic or partition, 422 refused).",
            "content": {RESPONSE_CONTENT_TYPE: {"schema": _ref(OffsetRecordSentList)}},
        },
        204: {"description": "async=true: queued."},
        400: _error("Unsupported content type, or a body that breaks the schema."),
        413: _error("More bytes or records than the service takes in one request."),
        422: _error("A record its embedded format cannot carry, or no `records`."),
        503: _error("Kafka is unavailable: nothing acknowledged; retry after Retry-After seconds."),
    }


def records_body(kind: str) -> dict[str, Any]:
    item = {"type": "object", "description": f"One {kind} (docs/transactions.md)."}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"oneOf": [item, {"type": "array", "items": item}]}}},
        }
    }


def records_responses() -> dict[int | str, dict[str, Any]]:
    media = "application/json"
    return {
        200: {"description": "Offsets, in request order.", "content": {media: {"schema": _ref(OffsetRecordSentList)}}},
        400: _error("The body is not JSON.", media),
        413: _error("More bytes or records than the service takes in one request.", media),
        415: _error("Not application/json.", media),
        422: _error("Invalid records: each is named with its field and the fix; nothing was sent.", media),
        503: _error("Kafka (or the pipeline's topic) is unavailable; retry after Retry-After seconds.", media),
    }


def customize(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """app.openapi replacement: FastAPI's document plus the schemas the produce routes refer to."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in _MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas[model.__name__] = schema
        app.openapi_schema = doc
        return doc

    return build
