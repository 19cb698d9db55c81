"""Prometheus Operator objects (ServiceMonitor, PodMonitor, PrometheusRule) and a Grafana dashboard.

kube-prometheus-stack selects monitors and rules by its release label, and its Grafana sidecar
loads every ConfigMap labelled grafana_dashboard: "1". Metric names are those of
docs/image-contracts.md (BentoML's defaults, Flink's Prometheus reporter, the job's own counters).
"""

from __future__ import annotations

import json

from fp_operator import labels, names
from fp_operator.kinds import api_version
from fraudpipeline.spec import FraudPipeline

JOB_METRIC_PREFIX = "flink_taskmanager_job_task_operator_fraudpipe_"


def _extra(p: FraudPipeline) -> dict[str, str]:
    return {"release": p.spec.monitoring.release}


def build_service_monitor(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("ServiceMonitor"),
        "kind": "ServiceMonitor",
        "metadata": labels.metadata(p, names.model(p), "monitoring", extra_labels=_extra(p)),
        "spec": {
            "selector": {"matchLabels": labels.selector_labels(p, "model")},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }


def build_pod_monitor(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("PodMonitor"),
        "kind": "PodMonitor",
        "metadata": labels.metadata(p, names.stream(p), "monitoring", extra_labels=_extra(p)),
        "spec": {
            "selector": {"matchLabels": labels.selector_labels(p, "stream")},
            "podMetricsEndpoints": [{"port": "metrics", "interval": "30s"}],
        },
    }


def _selectors(p: FraudPipeline) -> tuple[str, str]:
    model = f'namespace="{p.namespace}", job="{names.model(p)}"'
    # A PodMonitor's targets get job="<namespace>/<podmonitor name>".
    stream = f'namespace="{p.namespace}", job="{p.namespace}/{names.stream(p)}"'
    return model, stream


def _alert(
    name: str, expr: str, wait: str, severity: str, who: dict, summary: str, description: str | None = None
) -> dict:
    annotations = {"summary": summary, **({"description": description} if description else {})}
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity, **who},
        "annotations": annotations,
    }


def alert_rules(p: FraudPipeline) -> list[dict]:
    model, stream = _selectors(p)
    who = {"fraudpipeline": p.name, "namespace": p.namespace}
    ref = f"{p.namespace}/{p.name}"
    return [
        _alert(
            "FraudPipelineModelDown",
            f"sum(up{{{model}}}) == 0 or absent(up{{{model}}})",
            "5m",
            "critical",
            who,
            f"No model server of {ref} is up",
            "Remote scoring fails and /score returns errors.",
        ),
        _alert(
            "FraudPipelineScoringSlow",
            f"histogram_quantile(0.99, sum by (le) (rate(bentoml_service_request_duration_seconds_bucket"
            f"{{{model}}}[5m]))) > 0.1",
            "10m",
            "warning",
            who,
            f"p99 scoring latency of {ref} is above 100 ms",
        ),
        _alert(
            "FraudPipelineScoringErrors",
            f'sum(rate(bentoml_service_request_total{{{model}, http_response_code=~"5.."}}[5m])) / '
            f"sum(rate(bentoml_service_request_total{{{model}}}[5m])) > 0.01",
            "10m",
            "warning",
            who,
            f"More than 1% of scoring requests of {ref} fail",
        ),
        _alert(
            "FraudPipelineStreamNotRunning",
            f"max(flink_jobmanager_numRunningJobs{{{stream}}}) < 1"
            f" or absent(flink_jobmanager_numRunningJobs{{{stream}}})",
            "5m",
            "critical",
            who,
            f"The Flink job of {ref} is not running",
            "Transactions are not being scored; see the FlinkDeployment's status.",
        ),
        _alert(
            "FraudPipelineConsumerLag",
            f"max(flink_taskmanager_job_task_operator_KafkaSourceReader_KafkaConsumer_records_lag_max"
            f"{{{stream}}}) > 10000",
            "10m",
            "warning",
            who,
            f"The Flink job of {ref} lags more than 10000 records",
        ),
        _alert(
            "FraudPipelineCheckpointsFailing",
            f"increase(flink_jobmanager_job_numberOfFailedCheckpoints{{{stream}}}[15m]) > 0",
            "15m",
            "warning",
            who,
            f"Checkpoints of {ref} fail",
        ),
        _alert(
            "FraudPipelineDeadLetters",
            f"sum(rate({JOB_METRIC_PREFIX}dead_letters{{{stream}}}[5m])) > 0",
            "15m",
            "warning",
            who,
            f"{ref} sends records to its dead-letter topic",
        ),
    ]


def build_prometheus_rule(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("PrometheusRule"),
        "kind": "PrometheusRule",
        "metadata": labels.metadata(p, names.rules(p), "monitoring", extra_labels=_extra(p)),
        "spec": {"groups": [{"name": f"fraudpipeline.{p.namespace}.{p.name}", "rules": alert_rules(p)}]},
    }


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int) -> dict:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": e, "legendFormat": legend} for i, (e, legend) in enumerate(exprs)
        ],
    }


def dashboard(p: FraudPipeline) -> dict:
    model, stream = _selectors(p)
    panels = [
        _panel(
            1,
            "Scored transactions / s",
            [
                (f"sum(rate({JOB_METRIC_PREFIX}scored{{{stream}}}[1m]))", "scored"),
                (f"sum(rate({JOB_METRIC_PREFIX}alerts{{{stream}}}[1m]))", "alerts"),
                (f"sum(rate({JOB_METRIC_PREFIX}dead_letters{{{stream}}}[1m]))", "dead letters"),
            ],
            "ops",
            0,
            0,
        ),
        _panel(
            2,
            "Consumer lag (records)",
            [
                (
                    f"max(flink_taskmanager_job_task_operator_KafkaSourceReader_KafkaConsumer_records_lag_max{{{stream}}})",
                    "lag",
                )
            ],
            "short",
            12,
            0,
        ),
        _panel(
            3,
            "Model service requests / s",
            [(f"sum by (endpoint) (rate(bentoml_service_request_total{{{model}}}[1m]))", "{{endpoint}}")],
            "reqps",
            0,
            8,
        ),
        _panel(
            4,
            "Model service latency",
            [
                (
                    f"histogram_quantile(0.5, sum by (le) "
                    f"(rate(bentoml_service_request_duration_seconds_bucket{{{model}}}[5m])))",
                    "p50",
                ),
                (
                    f"histogram_quantile(0.99, sum by (le) "
                    f"(rate(bentoml_service_request_duration_seconds_bucket{{{model}}}[5m])))",
                    "p99",
                ),
            ],
            "s",
            12,
            8,
        ),
        _panel(5, "Model servers up", [(f"sum(up{{{model}}})", "up")], "short", 0, 16),
        _panel(
            6,
            "Checkpoint duration",
            [(f"max(flink_jobmanager_job_lastCheckpointDuration{{{stream}}})", "last checkpoint")],
            "ms",
            12,
            16,
        ),
    ]
    return {
        "uid": f"fp-{p.namespace}-{p.name}"[:40],
        "title": f"FraudPipeline {p.namespace}/{p.name}",
        "tags": ["fraudpipeline"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"}]
        },
        "panels": panels,
    }


def build_dashboard_configmap(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("ConfigMap"),
        "kind": "ConfigMap",
        "metadata": labels.metadata(
            p,
            names.dashboard(p),
            "monitoring",
            extra_labels={"grafana_dashboard": "1"},
            annotations={"grafana_folder": "FraudPipeline"},
        ),
        "data": {f"fraudpipeline-{p.namespace}-{p.name}.json": json.dumps(dashboard(p), indent=2, sort_keys=True)},
    }
