"""The ingest service's behaviour, independent of the web framework: request bytes in, answer out.

Two ways in, one producer:
- the Strimzi Kafka Bridge produce API (`produce_bridge`): any existing topic, the bridge's three
  embedded formats, the bridge's answers;
- the pipeline's own records (`produce_role`): POST /v1/transactions and /v1/labels take one JSON
  object or an array, validate each with `fraudpipeline.transactions` (422 naming the record, the
  field and the fix: the dead-letter message of the streaming job), and write them to the
  pipeline's topic keyed by card (transactions) or terminal (labels). The Kafka timestamp is the
  time the service received the record (event time travels in its `timestamp` field), or, with
  `record_timestamp="event"`, a transaction's own time.

Every produce answer comes after the broker acknowledged each record; Kafka down, overloaded or
slow to acknowledge is 503 with Retry-After, never a 200.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from fraudpipeline.ingest import bridge
from fraudpipeline.ingest.bridge import BridgeError, Record
from fraudpipeline.ingest.kafka import Gateway, Unavailable, record_error
from fraudpipeline.ingest.metrics import (
    ACKED,
    INVALID,
    NOT_FOUND,
    REFUSED,
    UNAVAILABLE,
    UNKNOWN_TOPIC,
    Metrics,
)
from fraudpipeline.ingest.settings import IngestSettings
from fraudpipeline.transactions import InvalidRecordError, parse_label, parse_transaction

JSON = b"application/json"
KAFKA_JSON = bridge.RESPONSE_CONTENT_TYPE.encode()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: bytes = KAFKA_JSON
    retry_after: int | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.status == 204:
            return []
        out = [(b"content-type", self.content_type), (b"content-length", str(len(self.body)).encode())]
        if self.retry_after is not None:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


def error_reply(exc: BridgeError, content_type: bytes = KAFKA_JSON) -> Reply:
    return Reply(exc.status, exc.body(), content_type, exc.retry_after)


class _Counted(Unavailable):
    """Unavailable, with its records already counted in the metrics."""


class TooLarge(BridgeError):
    def __init__(self, message: str):
        super().__init__(413, message)


class IngestService:
    def __init__(self, settings: IngestSettings, gateway: Gateway | None = None, metrics: Metrics | None = None):
        self.settings = settings
        self.gateway = gateway or Gateway(
            settings.bootstrap_servers,
            delivery_timeout_ms=settings.delivery_timeout_ms,
            linger_ms=settings.linger_ms,
            metadata_max_wait_ms=settings.metadata_max_wait_ms,
            producer_config=settings.producer_config,
            on_state=self._on_kafka_state,
        )
        self.metrics = metrics or Metrics(lambda: self.gateway.queued)
        if self.metrics.multiprocess:
            self.gateway._on_poll = self.metrics.set_queued

    def _on_kafka_state(self, up: bool) -> None:
        self.metrics.kafka_up.set(1 if up else 0)

    async def start(self) -> None:
        await self.gateway.start()
        self.metrics.kafka_up.set(1 if self.gateway.up else 0)

    async def stop(self) -> int:
        return await self.gateway.stop()

    # ------------------------------------------------------------------------------- limits

    def too_large(self, size: int) -> TooLarge:
        s = self.settings
        return TooLarge(
            f"The request body is larger than the limit of {s.max_body_bytes} bytes ({size} bytes or "
            f"more): split it into several requests (at most {s.max_records} records each)"
        )

    def check_count(self, n: int) -> None:
        s = self.settings
        if n > s.max_records:
            raise TooLarge(
                f"The request carries {n} records, more than the limit of {s.max_records} per request: "
                f"split it into several requests"
            )

    def unavailable(self, reason: str) -> BridgeError:
        return BridgeError(
            503,
            f"Service Unavailable: {reason}. The request was not acknowledged (some of its "
            f"records may have been written): send it again after the Retry-After delay",
            retry_after=self.settings.retry_after_s,
        )

    async def dispatch(
        self,
        endpoint: str,
        name: str,
        partition: str | None,
        content_type: bytes | str | None,
        query_string: bytes | str,
        body: bytes,
    ) -> Reply:
        """Answer a produce request: `endpoint` "/v1/..." (name = role) or a /topics route (name = topic)."""
        if endpoint.startswith("/v1/"):
            return await self.produce_role(name, content_type, body)
        return await self.produce_bridge(name, partition, content_type, query_string, body)

    # ------------------------------------------------------------------------- bridge API

    async def produce_bridge(
        self,
        topic: str,
        partition_param: str | None,
        content_type: bytes | str | None,
        query_string: bytes | str,
        body: bytes,
    ) -> Reply:
        """POST /topics/{topic}[/partitions/{partition}] as the Strimzi Kafka Bridge answers it."""
        label = topic
        n = 1
        try:
            partition = bridge.parse_partition_param(partition_param) if partition_param is not None else None
            is_async = (
                bridge.parse_async_param(
                    parse_qs(query_string.decode() if isinstance(query_string, bytes) else query_string)
                )
                if query_string
                else False
            )
            try:
                records = bridge.decode(body, content_type, partition)
            except BridgeError:
                self.metrics.count_records(label if topic in self.gateway.view.topics else UNKNOWN_TOPIC, INVALID)
                raise
            n = len(records)
            self.check_count(n)
            if not records:
                return Reply(200, b'{"offsets":[]}')
            self.gateway.check_available(n)
            count = await self.gateway.partition_count(topic)
            if count is None:
                label = UNKNOWN_TOPIC
                message = bridge.missing_topic_message(topic, self.settings.metadata_max_wait_ms)
                self.metrics.count_records(label, NOT_FOUND, len(records))
                return Reply(200, bridge.offsets_body([(404, message)] * len(records)))
            return await self._produce(topic, records, count, is_async)
        except Unavailable as exc:
            if not isinstance(exc, _Counted):
                self.metrics.count_records(
                    label if label in self.gateway.view.topics else UNKNOWN_TOPIC, UNAVAILABLE, n
                )
            return error_reply(self.unavailable(str(exc)))
        except BridgeError as exc:
            return error_reply(exc)

    async def _produce(self, topic: str, records: list[Record], count: int, is_async: bool) -> Reply:
        """Produce the records whose partition exists; answer offsets (or errors) in request order."""
        answers: list[Any] = [None] * len(records)
        to_send: list[Record] = []
        positions: list[int] = []
        wait_ms = self.settings.metadata_max_wait_ms
        for i, rec in enumerate(records):
            part = rec[2]
            if part != -1 and not 0 <= part < count:
                answers[i] = (404, bridge.missing_partition_message(topic, part, count, wait_ms))
            else:
                to_send.append(rec)
                positions.append(i)
        missing = len(records) - len(to_send)
        if missing:
            self.metrics.count_records(topic, NOT_FOUND, missing)
        if to_send:
            self.metrics.batch_records.observe(len(to_send))
            started = time.perf_counter()
            if is_async:
                # The bridge's async=true: answered once queued, without waiting for the broker.
                self.gateway.check_available(len(to_send))
                fut = asyncio.ensure_future(self.gateway.send(topic, to_send))
                fut.add_done_callback(lambda f: self._count_results(topic, f))
                return Reply(204, b"", content_type=KAFKA_JSON)
            try:
                results = await self.gateway.send(topic, to_send)
            except Unavailable as exc:
                self.metrics.count_records(topic, UNAVAILABLE, len(to_send))
                raise _Counted(str(exc)) from None
            self.metrics.produce_latency.observe(time.perf_counter() - started)
            acked = 0
            for pos, result in zip(positions, results):
                if type(result) is tuple:
                    answers[pos] = result
                    acked += 1
                    continue
                refused = record_error(result)
                if refused is None:
                    # Retriable (timed out, broker gone): the whole request is unavailable, never a 200.
                    self.metrics.count_records(topic, ACKED, acked)
                    self.metrics.count_records(topic, UNAVAILABLE, len(to_send) - acked)
                    raise _Counted(f"Kafka did not acknowledge a record: {result.str()}")
                answers[pos] = refused
                self.metrics.count_records(topic, NOT_FOUND if refused[0] == 404 else REFUSED)
            self.metrics.count_records(topic, ACKED, acked)
        return Reply(200, bridge.offsets_body(answers))

    def _count_results(self, topic: str, fut: Any) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.metrics.count_records(topic, UNAVAILABLE)
            return
        results = fut.result()
        acked = sum(1 for r in results if type(r) is tuple)
        self.metrics.count_records(topic, ACKED, acked)
        if acked < len(results):
            self.metrics.count_records(topic, REFUSED, len(results) - acked)

    # --------------------------------------------------------------------- pipeline records

    async def produce_role(self, role: str, content_type: bytes | str | None, body: bytes) -> Reply:
        """POST /v1/transactions or /v1/labels."""
        topic = self.settings.topics[role]
        try:
            if bridge.media_type(content_type) != "application/json":
                raise BridgeError(
                    415, f"Unsupported Media Type: send the {role} as JSON with 'Content-Type: application/json'"
                )
            if not body:
                raise BridgeError(400, f"The request has no body: send one {role[:-1]} object or an array of them")
            try:
                doc = bridge.loads(body)
            except (ValueError, RecursionError) as exc:
                raise BridgeError(
                    400, f"The request body is not valid JSON ({exc}): send one {role[:-1]} object or an array of them"
                ) from None
            items = doc if isinstance(doc, list) else [doc]
            self.check_count(len(items))
            records = self._validated(role, items, single=not isinstance(doc, list))
            if not records:
                return Reply(200, b'{"offsets":[]}', JSON)
            try:
                self.gateway.check_available(len(records))
            except Unavailable as exc:
                self.metrics.count_records(topic, UNAVAILABLE, len(records))
                raise _Counted(str(exc)) from None
            if await self.gateway.partition_count(topic) is None:
                self.metrics.count_records(topic, UNAVAILABLE, len(records))
                raise _Counted(
                    f"the {role} topic {topic} does not exist: create it (on Kubernetes the operator "
                    f"does, as a Strimzi KafkaTopic)"
                )
            reply = await self._produce(topic, records, 1 << 31, is_async=False)
            return Reply(reply.status, reply.body, JSON)
        except Unavailable as exc:
            return error_reply(self.unavailable(str(exc)), JSON)
        except BridgeError as exc:
            return error_reply(exc, JSON)

    def _validated(self, role: str, items: list[Any], single: bool) -> list[Record]:
        parse = parse_transaction if role == "transactions" else parse_label
        event_time = self.settings.record_timestamp == "event"
        records: list[Record] = []
        errors: list[str] = []
        for i, item in enumerate(items):
            try:
                if not isinstance(item, dict):  # (parse() would read a string as JSON text)
                    raise InvalidRecordError(role[:-1], [("(document)", "the record must be a JSON object")])
                rec = parse(item)
            except InvalidRecordError as exc:
                errors.append(str(exc) if single else f"record {i}: {exc}")
                continue
            if role == "transactions":
                ts = rec.event_time_us // 1000 if event_time else 0
                if ts < 0:
                    errors.append(
                        ("" if single else f"record {i}: ") + "invalid transaction: field 'timestamp' is "
                        "before 1970-01-01T00:00:00Z, which a Kafka record timestamp cannot carry"
                    )
                    continue
                records.append((rec.customer_id.encode(), bridge.dumps(item), -1, ts, None))
            else:
                records.append((rec.terminal_id.encode(), bridge.dumps(item), -1, 0, None))
        if errors:
            self.metrics.count_records(self.settings.topics[role], INVALID, len(errors))
            first = (
                errors[0]
                if len(errors) == 1
                else f"{len(errors)} of {len(items)} records are invalid, nothing was sent; {errors[0]}"
            )
            raise BridgeError(422, first, errors)
        return records

    # ------------------------------------------------------------------------------ health

    def readiness(self) -> dict[str, Any]:
        view = self.gateway.view
        topics = {role: {"topic": name, "exists": name in view.topics} for role, name in self.settings.topics.items()}
        reasons = []
        if not self.gateway.up:
            reasons.append(self.gateway.fatal or self.gateway.down_reason)
        for role, t in topics.items():
            if not t["exists"]:
                reasons.append(f"the {role} topic {t['topic']} does not exist")
        return {
            "ready": not reasons,
            "pipeline": self.settings.pipeline,
            "kafka": self.settings.bootstrap_servers,
            "kafka_up": self.gateway.up,
            "topics": topics,
            "reasons": reasons,
        }


def json_reply(status: int, payload: Any, content_type: bytes = KAFKA_JSON) -> Reply:
    return Reply(status, orjson.dumps(payload), content_type)
