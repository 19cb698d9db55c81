"""What the ingest service is told: the pipeline's topics (from the FraudPipeline file) and limits."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fraudpipeline.spec import FraudPipeline, load_pipeline

# The records the /v1 endpoints accept, by pipeline topic role.
ROLES = ("transactions", "labels")


@dataclass(frozen=True)
class IngestSettings:
    pipeline: str  # "<namespace>/<name>", for logs and /readyz
    bootstrap_servers: str
    topics: dict[str, str]  # role -> Kafka topic name, as the operator names them
    host: str = "127.0.0.1"
    port: int = 8080
    # Bounds: a request larger than either is answered 413 before anything is produced.
    max_body_bytes: int = 1 << 20
    max_records: int = 1_000
    # How long a request waits for the broker's acknowledgements before answering 503.
    delivery_timeout_ms: int = 10_000
    linger_ms: float = 1.0
    # How long to wait for metadata before calling a topic missing (the bridge's max.block.ms role).
    metadata_max_wait_ms: int = 5_000
    retry_after_s: int = 2
    # The Kafka timestamp of /v1 records: "received" (when the service took it; event time stays in
    # the record's own `timestamp` field) or "event" (the transaction's own time). Event time suits
    # live traffic only: the topic's time-based retention deletes older records as soon as they are
    # written (a replay of 2018 data), and the broker refuses times beyond
    # message.timestamp.after.max.ms (1 hour) in the future.
    record_timestamp: Literal["received", "event"] = "received"
    producer_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pipeline(
        cls, pipeline: FraudPipeline, bootstrap_servers: str | None = None, port: int | None = None, **overrides: Any
    ) -> IngestSettings:
        """Topic names from the spec; the default port is the spec's bridge port (8080 unless set)."""
        return cls(
            pipeline=f"{pipeline.namespace}/{pipeline.name}",
            bootstrap_servers=bootstrap_servers or pipeline.bootstrap_servers,
            topics={role: pipeline.topic_name(role) for role in ROLES},
            port=port if port is not None else pipeline.spec.kafka.bridge.port,
            **overrides,
        )

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> IngestSettings:
        return cls.from_pipeline(load_pipeline(path), **kwargs)

    def to_json(self) -> str:
        """For worker processes, which read it back with `from_json` (`fraudpipe ingest run --workers`)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> IngestSettings:
        return cls(**json.loads(text))
