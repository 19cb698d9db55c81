"""The operator's Prometheus metrics (served on --metrics-port, /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

API_REQUESTS = Counter(
    "fraudpipeline_operator_api_requests_total",
    "API requests made by the reconciler (kopf's watches excluded)",
    ["verb", "kind"],
)
RECONCILES = Counter("fraudpipeline_operator_reconciles_total", "Reconciles by result", ["result"])
RECONCILE_SECONDS = Histogram(
    "fraudpipeline_operator_reconcile_duration_seconds",
    "Duration of one reconcile",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
APPLIES = Counter("fraudpipeline_operator_child_applies_total", "Children applied (created or changed)", ["kind"])
QUEUE_DEPTH = Gauge("fraudpipeline_operator_queue_depth", "Pipelines waiting to be reconciled")
LEADER = Gauge("fraudpipeline_operator_leader", "1 while this replica reconciles (holds the Lease, or runs alone)")
