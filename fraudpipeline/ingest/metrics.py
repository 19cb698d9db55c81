"""Prometheus metrics of the ingest service, all named `fraudpipe_ingest_*`.

One process: a registry of its own, plus the process collectors. Several worker processes
(`fraudpipe ingest run --workers N`): prometheus_client's multiprocess mode (each worker writes its
values to files in PROMETHEUS_MULTIPROC_DIR, set before the workers start) and /metrics sums them,
whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

NAMESPACE, SUBSYSTEM = "fraudpipe", "ingest"
# A request takes 1..10 ms when Kafka is healthy; the tail buckets catch broker stalls and timeouts.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000)

# Outcomes of a record: what the caller was told about it.
ACKED = "acked"  # the broker acknowledged it (acks=all)
INVALID = "invalid"  # refused before Kafka: schema, format or transaction validation
NOT_FOUND = "not_found"  # its topic or partition does not exist
REFUSED = "refused"  # the broker refused it (too large, not authorized, ...)
UNAVAILABLE = "unavailable"  # answered 503: Kafka down, overloaded, or no acknowledgement in time
UNKNOWN_TOPIC = "(unknown)"  # topic label for topics that do not exist (keeps the label set bounded)


class Metrics:
    """The service's metrics, in a registry of their own (so tests can build several services)."""

    def __init__(self, queued: Callable[[], int] = lambda: 0, registry: CollectorRegistry | None = None):
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self.registry = registry or CollectorRegistry()
        kw = {"namespace": NAMESPACE, "subsystem": SUBSYSTEM, "registry": self.registry}
        self.records = Counter(
            "records",
            "Records received, by topic and outcome (acked, invalid, not_found, refused, unavailable)",
            ["topic", "outcome"],
            **kw,
        )
        self.requests = Counter("requests", "HTTP requests by endpoint and status code", ["endpoint", "code"], **kw)
        self.request_latency = Histogram(
            "request_duration_seconds",
            "Time from the request to its answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.produce_latency = Histogram(
            "produce_duration_seconds",
            "Per request, from handing its records to the producer to the broker's last acknowledgement",
            buckets=LATENCY_BUCKETS,
            **kw,
        )
        self.batch_records = Histogram("request_records", "Records per produce request", buckets=BATCH_BUCKETS, **kw)
        # Across workers: requests and queued records add up; Kafka is up when every worker says so.
        self.in_flight = Gauge("in_flight_requests", "Requests being handled", multiprocess_mode="livesum", **kw)
        self.queued = Gauge(
            "queued_records", "Records handed to the producer, not yet acknowledged", multiprocess_mode="livesum", **kw
        )
        if not self.multiprocess:  # (a function gauge is read at scrape time, in this process only)
            self.queued.set_function(queued)
        self.kafka_up = Gauge(
            "kafka_up", "1 when the broker answers and the producer is healthy", multiprocess_mode="livemin", **kw
        )
        self._children: dict[tuple[str, str], Counter] = {}
        self._endpoint: dict[tuple[str, int], Counter] = {}
        self._latency: dict[str, Histogram] = {}

    def count_records(self, topic: str, outcome: str, n: int = 1) -> None:
        child = self._children.get((topic, outcome))
        if child is None:
            child = self._children[(topic, outcome)] = self.records.labels(topic, outcome)
        child.inc(n)

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        child = self._endpoint.get((endpoint, code))
        if child is None:
            child = self._endpoint[(endpoint, code)] = self.requests.labels(endpoint, str(code))
        child.inc()
        hist = self._latency.get(endpoint)
        if hist is None:
            hist = self._latency[endpoint] = self.request_latency.labels(endpoint)
        hist.observe(seconds)

    def set_queued(self, n: int) -> None:
        """Several workers: each writes its own count (one process reads the producer at scrape time)."""
        if self.multiprocess:
            self.queued.set(n)

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        # The process collectors (CPU, memory, GC) live on the default registry.
        return generate_latest(self.registry) + generate_latest(REGISTRY), CONTENT_TYPE_LATEST
