"""fraudpipeline_operator_pipeline_ready: one series per watched pipeline, 1 only when Ready is True
for the current generation (what the FraudPipelineNotReady alert reads)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from fp_operator.cache import ObjectCache
from fp_operator.status_metrics import PIPELINE_READY, PipelineStatusCollector


def _pipeline(ns, name, generation, observed, ready, phase, reason, deleting=False):
    meta = {"namespace": ns, "name": name, "generation": generation, "resourceVersion": "1", "uid": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-29T00:00:00Z"
    return {
        "apiVersion": "frauddetect.dev/v1alpha1",
        "kind": "FraudPipeline",
        "metadata": meta,
        "status": {
            "observedGeneration": observed,
            "phase": phase,
            "conditions": [{"type": "Ready", "status": ready, "reason": reason}],
        },
    }


def test_one_series_per_pipeline_with_its_readiness():
    cache = ObjectCache()
    cache.observe("ADDED", _pipeline("fraud", "ready", 2, 2, "True", "Ready", "AllComponentsReady"))
    cache.observe("ADDED", _pipeline("fraud", "stale", 3, 2, "True", "Ready", "AllComponentsReady"))
    cache.observe("ADDED", _pipeline("risk", "degraded", 1, 1, "False", "Degraded", "ApplyFailed"))
    cache.observe("ADDED", _pipeline("risk", "going", 1, 1, "True", "Ready", "AllComponentsReady", deleting=True))
    registry = CollectorRegistry()
    registry.register(PipelineStatusCollector(cache))
    text = generate_latest(registry).decode()
    lines = sorted(
        line.removeprefix(PIPELINE_READY) for line in text.splitlines() if line.startswith(PIPELINE_READY + "{")
    )
    assert lines == [
        '{phase="Degraded",pipeline="degraded",pipeline_namespace="risk",reason="ApplyFailed"} 0.0',
        '{phase="Ready",pipeline="ready",pipeline_namespace="fraud",reason="AllComponentsReady"} 1.0',
        # Ready for an older generation: the change is not rolled out yet.
        '{phase="Ready",pipeline="stale",pipeline_namespace="fraud",reason="AllComponentsReady"} 0.0',
    ]
