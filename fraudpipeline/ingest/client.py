"""Posting records over HTTP with `kafka-bridge-client`, to this service or to a Strimzi Kafka Bridge.

`kafka_bridge_client.KafkaBridgeProducer.send/sends` works unchanged against the ingest service
(the integration tests use it so). It leaves out what a pipeline client needs: the offsets of
the answer (it returns True), record timestamps in the binary format, retrying a 503 after its
Retry-After, and connection reuse. `BridgeProducer` adds those on the same class, with the same
protocol (`POST {url}/topics/{topic}`, the binary embedded format: key and value are base64 of
the exact bytes) and the same exceptions, so it runs against either server.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from kafka_bridge_client import KafkaBridgeProducer
from kafka_bridge_client.exceptions import (
    KafkaBridgeError,
    KafkaBridgeInternalError,
    KafkaBridgeResourceException,
    KafkaBridgeTopicNotFoundError,
    ValidationError,
)

BINARY = "application/vnd.kafka.binary.v2+json"


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One Kafka record to send: exact key and value bytes, timestamp in ms (None: the server's now)."""

    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


class RecordsRefused(KafkaBridgeError):
    """The server answered 200 but refused some records (`errors`: (index, error_code, message))."""

    def __init__(self, topic: str, errors: list[tuple[int, int, str]], offsets: list[dict[str, Any]]):
        self.errors = errors
        self.offsets = offsets
        first = errors[0]
        super().__init__(f"{len(errors)} record(s) refused by {topic}; record {first[0]}: {first[1]} {first[2]}")


class Unavailable(KafkaBridgeResourceException):
    """503 after every retry: Kafka behind the server stayed unavailable."""


def error_message(response: requests.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:500] or response.reason
    if isinstance(doc, dict) and "message" in doc:
        extra = doc.get("validation_errors") or []
        return str(doc["message"]) + (f" ({'; '.join(map(str, extra))})" if extra else "")
    return str(doc)[:500]


class BridgeProducer(KafkaBridgeProducer):
    """kafka-bridge-client's producer, with offsets, timestamps, retries and a kept-alive session."""

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        retries: int = 5,
        max_retry_wait: float = 30.0,
        on_retry: Callable[[str, float], None] | None = None,
        unreachable_wait: float = 0.0,
    ):
        super().__init__(url.rstrip("/"), timeout)
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.on_retry = on_retry
        # How long a service that does not answer, or answers 503, is asked again (a restart of it or
        # of its Kafka behind a supervisor); 0: at once for no answer, `retries` times for a 503.
        self.unreachable_wait = unreachable_wait
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    @staticmethod
    def _body(records: Sequence[OutRecord]) -> dict[str, Any]:
        out = []
        for rec in records:
            item: dict[str, Any] = {"value": None if rec.value is None else base64.b64encode(rec.value).decode()}
            if rec.key is not None:
                item["key"] = base64.b64encode(rec.key).decode()
            if rec.timestamp_ms is not None:
                item["timestamp"] = rec.timestamp_ms
            out.append(item)
        return {"records": out}

    def send_records(self, topic: str, records: Sequence[OutRecord]) -> list[dict[str, Any]]:
        """POST the records; the `offsets` of the answer, one {"partition", "offset"} per record.

        A 503 is retried after its Retry-After (at least `retries` times, and for `unreachable_wait`
        s); no answer at all, every second for up to `unreachable_wait` s (a request cut by a
        restart may have been written: a pipeline refuses the repeat as a repeated transaction id,
        a dead letter). Errors raise the
        client's own exceptions: KafkaBridgeTopicNotFoundError (404), ValidationError (400, 413,
        422), KafkaBridgeInternalError (500), RecordsRefused (200 with refused records),
        Unavailable (503 to the end), KafkaBridgeResourceException (anything else).
        """
        body = self._body(records)
        url = f"{self._url}/topics/{topic}"
        attempt = 0
        unavailable_since = None  # the first 503 or unanswered request of this send
        while True:
            try:
                response = self.session.post(url, json=body, timeout=self._timeout, headers={"Content-Type": BINARY})
            except requests.ConnectionError as exc:
                unavailable_since = unavailable_since or time.monotonic()
                if time.monotonic() - unavailable_since >= self.unreachable_wait:
                    raise KafkaBridgeResourceException(f"no answer from {self._url}: {exc}") from None
                if self.on_retry is not None:
                    self.on_retry(f"no answer from {self._url}", 1.0)
                time.sleep(1.0)
                continue
            if response.status_code == 503:
                unavailable_since = unavailable_since or time.monotonic()
                within = time.monotonic() - unavailable_since < self.unreachable_wait
                if attempt < self.retries or within:
                    attempt += 1
                    wait = min(self.max_retry_wait, float(response.headers.get("Retry-After", "1") or 1))
                    if self.on_retry is not None:
                        self.on_retry(error_message(response), wait)
                    time.sleep(wait)
                    continue
            break
        status = response.status_code
        if status == 200:
            offsets = response.json()["offsets"]
            refused = [(i, o["error_code"], o.get("message", "")) for i, o in enumerate(offsets) if "error_code" in o]
            if refused:
                raise RecordsRefused(topic, refused, offsets)
            return offsets
        message = f"{status} from {url}: {error_message(response)}"
        if status == 404:
            raise KafkaBridgeTopicNotFoundError(message)
        if status in (400, 413, 422):
            raise ValidationError(message)
        if status == 500:
            raise KafkaBridgeInternalError(message)
        if status == 503:
            raise Unavailable(message)
        raise KafkaBridgeResourceException(message)
