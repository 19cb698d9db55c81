"""What the job writes: alerts, scores and dead letters (documented in docs/streaming.md).

Alerts and scores are JSON keyed by card. A dead letter keeps the original record's key and
bytes untouched (so it can be replayed once fixed) and carries why and where from in headers, as
Kafka Connect's dead-letter queues do.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from fraudpipeline.features import FEATURE_NAMES

# Dead-letter header names (values are UTF-8 text).
H_REASON = "fraudpipe.error.reason"
H_FIELD = "fraudpipe.error.field"
H_KIND = "fraudpipe.error.kind"
H_TOPIC = "fraudpipe.source.topic"
H_PARTITION = "fraudpipe.source.partition"
H_OFFSET = "fraudpipe.source.offset"
H_FAILED_AT = "fraudpipe.failed.at"
H_PIPELINE = "fraudpipe.pipeline"

# Dead-letter kinds: a closed set, counted in the metrics and documented.
INVALID = "invalid-record"  # not JSON, or breaks the schema of docs/transactions.md
REFUSED = "refused"  # valid, but refused by the feature state (duplicate transaction_id, far future)
UNSCORABLE = "unscorable"  # features built but the model service refused the row


def now_rfc3339(now: float | None = None) -> str:
    return (
        datetime.fromtimestamp(time.time() if now is None else now, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


NO_KEY = "key-null"
NO_VALUE = "value-null"


def split_source(source: str) -> tuple[str, int, int]:
    """ "topic/partition/offset[/flags]" (one field from the source, cheaper to carry than three) ->
    (topic, partition, offset). Kafka topic names cannot contain '/', so the split is unambiguous."""
    topic, partition, offset = source.split("/", 3)[:3]
    return topic, int(partition), int(offset)


def original(key: bytes, value: bytes, source: str) -> tuple[bytes | None, bytes | None]:
    """The record's key and value as they were in Kafka: a null one travels as b"" and is flagged."""
    if "/" + NO_KEY in source:
        key = None
    if "/" + NO_VALUE in source:
        value = None
    return key, value


def dead_letter_headers(reason: str, field: str, kind: str, source: str, pipeline: str) -> dict[str, bytes]:
    topic, partition, offset = split_source(source)
    return {
        H_REASON: reason.encode(),
        H_FIELD: field.encode(),
        H_KIND: kind.encode(),
        H_TOPIC: topic.encode(),
        H_PARTITION: str(partition).encode(),
        H_OFFSET: str(offset).encode(),
        H_FAILED_AT: now_rfc3339().encode(),
        H_PIPELINE: pipeline.encode(),
    }


def alert_value(
    transaction: bytes,
    features: list[float],
    score: float,
    threshold: float,
    model_tag: str,
    pipeline: str,
    source: str,
    decided_at: float,
) -> bytes:
    """An alert: the transaction as it came, its 15 features by name, score, threshold, model, when."""
    return orjson.dumps(
        {
            "pipeline": pipeline,
            "transaction": orjson.Fragment(transaction),
            "score": score,
            "threshold": threshold,
            "model_tag": model_tag,
            "features": dict(zip(FEATURE_NAMES, features)),
            "decided_at": now_rfc3339(decided_at),
            "source": dict(zip(("topic", "partition", "offset"), split_source(source))),
        }
    )


def score_value(
    transaction_id: str,
    customer_id: str,
    terminal_id: str,
    timestamp_us: int,
    score: float,
    is_fraud: bool,
    threshold: float,
    model_tag: str,
    pipeline: str,
    decided_at: float,
) -> bytes:
    """A score (every scored transaction, when the scores topic is configured): compact, no features."""
    return orjson.dumps(
        {
            "pipeline": pipeline,
            "transaction_id": transaction_id,
            "customer_id": customer_id,
            "terminal_id": terminal_id,
            "event_time_us": timestamp_us,
            "score": score,
            "is_fraud": is_fraud,
            "threshold": threshold,
            "model_tag": model_tag,
            "decided_at": now_rfc3339(decided_at),
            "decided_at_ms": int(decided_at * 1000),
        }
    )
