"""Each watched FraudPipeline's readiness as a Prometheus series, read from the watch cache when
`/metrics` is scraped (no bookkeeping on the reconcile path).

`fraudpipeline_operator_pipeline_ready{pipeline_namespace, pipeline, phase, reason}` is 1 while the
pipeline's Ready condition is True for its current generation, else 0. The labels are not
`namespace`/`name`: Prometheus puts the operator's own namespace on every series it scrapes from it.
The `FraudPipelineNotReady` alert (builders/monitoring.py) reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from fp_operator.cache import ObjectCache

PIPELINE_READY = "fraudpipeline_operator_pipeline_ready"


def ready_value(pipeline: dict) -> tuple[float, str, str]:
    """(1.0 or 0.0, phase, Ready reason) of a FraudPipeline object."""
    status = pipeline.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    current = status.get("observedGeneration") == (pipeline.get("metadata") or {}).get("generation")
    value = 1.0 if ready.get("status") == "True" and current else 0.0
    return value, str(status.get("phase") or "Unknown"), str(ready.get("reason") or "Unknown")


class PipelineStatusCollector:
    """A prometheus_client collector over the cache's FraudPipelines."""

    def __init__(self, cache: ObjectCache) -> None:
        self.cache = cache

    def describe(self) -> list:
        return []  # collected on each scrape only (its series depend on what is watched)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            PIPELINE_READY,
            "1 while the FraudPipeline's Ready condition is True for its current generation",
            labels=["pipeline_namespace", "pipeline", "phase", "reason"],
        )
        for namespace, name in sorted(self.cache.pipelines()):
            obj = self.cache.pipeline((namespace, name))
            if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
                continue
            value, phase, reason = ready_value(obj)
            family.add_metric([namespace, name, phase, reason], value)
        yield family
