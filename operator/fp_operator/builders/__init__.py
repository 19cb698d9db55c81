"""Pure builders: a FraudPipeline (plus what discovery found) in, the desired children out.

No I/O and no clock here (an import-linter contract in pyproject.toml keeps the API client, kopf
and anything doing I/O out). `build_children` is what the reconciler applies; each builder is named for what it returns.
"""

from __future__ import annotations

from fp_operator.builders.context import BuildOptions, Capabilities
from fp_operator.builders.flink_deployment import build_flink_deployment, build_flink_service_account
from fp_operator.builders.kafka_bridge import build_kafka_bridge
from fp_operator.builders.kafka_topics import build_kafka_topics
from fp_operator.builders.model_service import (
    build_model_deployment,
    build_model_hpa,
    build_model_pdb,
    build_model_service,
)
from fp_operator.builders.monitoring import (
    build_dashboard_configmap,
    build_pod_monitor,
    build_prometheus_rule,
    build_service_monitor,
)
from fraudpipeline.spec import FraudPipeline

__all__ = ["BuildOptions", "Capabilities", "build_children"]


def build_children(p: FraudPipeline, caps: Capabilities, opts: BuildOptions | None = None) -> list[dict]:
    """Every child the pipeline should have, in apply order (topics before the job that uses them)."""
    opts = opts or BuildOptions()
    out: list[dict] = []
    if caps.serves("KafkaTopic"):
        out += build_kafka_topics(p, caps.api_version("KafkaTopic"))
    if p.spec.kafka.bridge.enabled and caps.serves("KafkaBridge"):
        out.append(build_kafka_bridge(p, caps.api_version("KafkaBridge")))
    if caps.serves("FlinkDeployment"):
        out += build_flink_service_account(p, opts.flink_job_cluster_role)
        out.append(build_flink_deployment(p, caps.api_version("FlinkDeployment")))
    out += [
        build_model_deployment(p, opts.model_run_as_user),
        build_model_service(p),
        build_model_hpa(p),
        build_model_pdb(p),
    ]
    mon = p.spec.monitoring
    if mon.enabled:
        if caps.serves("ServiceMonitor"):
            out.append(build_service_monitor(p))
        if caps.serves("PodMonitor"):
            out.append(build_pod_monitor(p))
        if mon.alerts and caps.serves("PrometheusRule"):
            out.append(build_prometheus_rule(p))
        if mon.dashboards:
            out.append(build_dashboard_configmap(p))
    return out
