"""What the builders need to know beyond the spec: which APIs the cluster serves, operator options."""

from __future__ import annotations

from dataclasses import dataclass, field

MONITORING_KINDS = frozenset({"ServiceMonitor", "PodMonitor", "PrometheusRule"})


@dataclass(frozen=True)
class Capabilities:
    """Found by discovery; builders emit only what the cluster can store."""

    kafka_api_version: str | None = "v1"  # kafka.strimzi.io version for KafkaTopic/KafkaBridge; None: not served
    flink: bool = True  # flink.apache.org/v1beta1 FlinkDeployment served
    monitoring: frozenset[str] = field(default_factory=lambda: MONITORING_KINDS)  # served kinds


@dataclass(frozen=True)
class BuildOptions:
    """Operator-wide settings (environment variables of the operator, see docs/operator.md)."""

    flink_job_cluster_role: str = "fraudpipeline-flink-job"
    model_run_as_user: int = 1000
