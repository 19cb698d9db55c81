"""Prometheus Operator objects (ServiceMonitor, PodMonitor, PrometheusRule) and a Grafana dashboard.

kube-prometheus-stack selects monitors and rules by its release label, and its Grafana sidecar
loads every ConfigMap labelled grafana_dashboard: "1". Every metric the alerts and panels read is
one a component really exports (the names below; tests/integration/observability runs the whole
pipeline on one machine and requires data for each): the scoring service's `fraudpipe_serving_*`,
the job's counters and Flink's own metrics through Flink's Prometheus reporter, the operator's
`fraudpipeline_operator_*`, and kube-state-metrics' HPA series (kube-prometheus-stack runs it).

Each alert names its runbook section (docs/runbook.md); `alert_signals` gives the query each alert
compares with its threshold, so a test can see the measured value whether or not the alert fires.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fp_operator import labels, names
from fp_operator.kinds import api_version
from fraudpipeline.spec import FraudPipeline

RUNBOOK_URL = "https://github.com/frauddetect/fraudpipeline/blob/main/docs/runbook.md"

# The job's own metrics (metric group `fraudpipe` of its operators, Flink's Prometheus reporter).
JOB_METRIC_PREFIX = "flink_taskmanager_job_task_operator_fraudpipe_"
# Flink's source metrics (FLIP-33): records not yet read, per source reader (the consumer lag).
SOURCE_PENDING = "flink_taskmanager_job_task_operator_pendingRecords"
RUNNING_JOBS = "flink_jobmanager_numRunningJobs"
FAILED_CHECKPOINTS = "flink_jobmanager_job_numberOfFailedCheckpoints"
COMPLETED_CHECKPOINTS = "flink_jobmanager_job_numberOfCompletedCheckpoints"
CHECKPOINT_DURATION = "flink_jobmanager_job_lastCheckpointDuration"
SERVING_REQUESTS = "fraudpipe_serving_requests_total"
SERVING_LATENCY = "fraudpipe_serving_request_duration_seconds_bucket"
SERVING_DECISIONS = "fraudpipe_serving_decisions_total"
SERVING_MODEL = "fraudpipe_serving_model_info"
OPERATOR_RECONCILES = "fraudpipeline_operator_reconciles_total"
OPERATOR_PIPELINE_READY = "fraudpipeline_operator_pipeline_ready"
HPA_DESIRED = "kube_horizontalpodautoscaler_status_desired_replicas"
HPA_CURRENT = "kube_horizontalpodautoscaler_status_current_replicas"

# Scoring endpoints of the model service (its other paths are probes, metrics and model info).
SCORING_ENDPOINTS = '"/score|/score_batch"'
# Objectives the latency alerts hold the pipeline to (docs/runbook.md says why these).
DECISION_P99_OBJECTIVE_MS = 500
SERVING_P99_OBJECTIVE_S = 0.1
DEAD_LETTER_RATIO = 0.01
LAG_RECORDS = 10_000


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


def scrape_jobs(p: FraudPipeline) -> dict[str, str]:
    """The `job` label Prometheus gives each component's series: a ServiceMonitor's targets get
    the Service's name, a PodMonitor's `<namespace>/<podmonitor name>`."""
    return {"model": names.model(p), "stream": f"{p.namespace}/{names.stream(p)}"}


@dataclass(frozen=True)
class Selectors:
    model: str
    stream: str
    hpa: str
    pipeline: str

    @classmethod
    def of(cls, p: FraudPipeline, extra: str = "") -> Selectors:
        jobs = scrape_jobs(p)
        return cls(
            model=f'namespace="{p.namespace}", job="{jobs["model"]}"{extra}',
            stream=f'namespace="{p.namespace}", job="{jobs["stream"]}"{extra}',
            hpa=f'namespace="{p.namespace}", horizontalpodautoscaler="{names.model(p)}"{extra}',
            # The operator's series are labelled with the pipeline (it runs elsewhere, one for all).
            pipeline=f'pipeline_namespace="{p.namespace}", pipeline="{p.name}"{extra}',
        )


@dataclass(frozen=True)
class Alert:
    name: str
    signal: str  # the measured value
    condition: str  # appended to the signal: the alert's threshold
    wait: str
    severity: str
    summary: str
    description: str
    anchor: str  # section of docs/runbook.md

    def rule(self, who: dict[str, str]) -> dict:
        return {
            "alert": self.name,
            "expr": f"{self.signal} {self.condition}",
            "for": self.wait,
            "labels": {"severity": self.severity, **who},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{RUNBOOK_URL}#{self.anchor}",
            },
        }


def alerts(p: FraudPipeline) -> list[Alert]:
    s = Selectors.of(p)
    ref = f"{p.namespace}/{p.name}"
    job = JOB_METRIC_PREFIX
    return [
        Alert(
            "FraudPipelineNoTransactions",
            f"sum(rate({job}scored{{{s.stream}}}[10m])) + sum(rate({job}dead_letters{{{s.stream}}}[10m]))",
            "== 0",
            "5m",
            "critical",
            f"{ref} has taken no transaction for 15 minutes",
            "The streaming job runs but neither scored a transaction nor refused one: producers stopped, "
            "the transactions topic is wrong, or the job is stuck.",
            "no-transactions",
        ),
        Alert(
            "FraudPipelineDeadLetterRatioHigh",
            f"sum(rate({job}dead_letters{{{s.stream}}}[5m])) / (sum(rate({job}scored{{{s.stream}}}[5m])) "
            f"+ sum(rate({job}dead_letters{{{s.stream}}}[5m])))",
            f"> {DEAD_LETTER_RATIO}",
            "10m",
            "warning",
            f"More than {DEAD_LETTER_RATIO:.0%} of the records {ref} reads go to its dead-letter topic",
            "Records that cannot be parsed, repeat a transaction id, or are refused by the scoring service "
            "are not scored; the dead letters' headers say why.",
            "dead-letter-ratio-high",
        ),
        Alert(
            "FraudPipelineDecisionSlow",
            f'max({job}scoring_latency_ms{{{s.stream}, quantile="0.99"}})',
            f"> {DECISION_P99_OBJECTIVE_MS}",
            "10m",
            "warning",
            f"p99 decision latency of {ref} is above {DECISION_P99_OBJECTIVE_MS} ms",
            "From a transaction entering its scoring batch to its decision, in the streaming job.",
            "decision-latency-over-objective",
        ),
        Alert(
            "FraudPipelineScoringSlow",
            f"histogram_quantile(0.99, sum by (le) (rate({SERVING_LATENCY}{{{s.model}, "
            f"endpoint=~{SCORING_ENDPOINTS}}}[5m])))",
            f"> {SERVING_P99_OBJECTIVE_S}",
            "10m",
            "warning",
            f"p99 latency of {ref}'s scoring service is above {SERVING_P99_OBJECTIVE_S * 1000:.0f} ms",
            "Scoring requests (/score, /score_batch) take longer than their objective.",
            "scoring-latency-over-objective",
        ),
        Alert(
            "FraudPipelineScoringErrors",
            # A service that never failed has no 5xx series at all: its error ratio is 0, not nothing.
            f'(sum(rate({SERVING_REQUESTS}{{{s.model}, status=~"5.."}}[5m])) or vector(0)) '
            f"/ sum(rate({SERVING_REQUESTS}{{{s.model}}}[5m]))",
            "> 0.01",
            "10m",
            "warning",
            f"More than 1% of the requests to {ref}'s scoring service fail",
            "The scoring service answers 5xx (overload, timeouts or a fault).",
            "scoring-errors",
        ),
        Alert(
            "FraudPipelineModelNotReady",
            f"(count({SERVING_MODEL}{{{s.model}}}) or vector(0))",
            "< 1",
            "5m",
            "critical",
            f"No scoring service replica of {ref} is up with its model loaded",
            "Remote scoring stalls (the job waits with back-pressure) and /score fails.",
            "model-not-ready",
        ),
        Alert(
            "FraudPipelineStreamNotRunning",
            f"(max({RUNNING_JOBS}{{{s.stream}}}) or vector(0))",
            "< 1",
            "5m",
            "critical",
            f"The streaming job of {ref} is not running",
            "Transactions are not being scored; the FlinkDeployment's status says why.",
            "stream-not-running",
        ),
        Alert(
            "FraudPipelineCheckpointsFailing",
            f"sum(increase({FAILED_CHECKPOINTS}{{{s.stream}}}[15m]))",
            # At least as many failed as completed: the few that fail while a job starts (its tasks
            # not all running yet) do not raise it, storage that refuses every checkpoint does.
            f"> 0 and sum(increase({FAILED_CHECKPOINTS}{{{s.stream}}}[15m])) "
            f">= sum(increase({COMPLETED_CHECKPOINTS}{{{s.stream}}}[15m]))",
            "0m",
            "warning",
            f"Checkpoints of {ref} fail",
            "Without checkpoints the job commits no output (alerts wait) and a restart replays further back.",
            "checkpoints-failing",
        ),
        Alert(
            "FraudPipelineConsumerLagGrowing",
            f"sum({SOURCE_PENDING}{{{s.stream}}})",
            f"> {LAG_RECORDS} and sum(deriv({SOURCE_PENDING}{{{s.stream}}}[10m])) > 0",
            "10m",
            "warning",
            f"The streaming job of {ref} lags more than {LAG_RECORDS} records and falls further behind",
            "Transactions arrive faster than the job scores them.",
            "consumer-lag-growing",
        ),
        Alert(
            "FraudPipelineNotReady",
            f"max({OPERATOR_PIPELINE_READY}{{{s.pipeline}}})",
            "< 1",
            "15m",
            "warning",
            f"FraudPipeline {ref} is not Ready",
            "The operator reports the pipeline not Ready; `kubectl get fp` and its Ready condition say which "
            "component and why.",
            "fraudpipeline-not-ready",
        ),
    ]


def alert_signals(p: FraudPipeline) -> dict[str, str]:
    """Alert name -> the value it compares (its expression without the threshold)."""
    return {a.name: a.signal for a in alerts(p)}


def alert_rules(p: FraudPipeline) -> list[dict]:
    who = {"fraudpipeline": p.name, "namespace": p.namespace}
    return [a.rule(who) for a in alerts(p)]


def build_prometheus_rule(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("PrometheusRule"),
        "kind": "PrometheusRule",
        "metadata": labels.metadata(p, names.rules(p), "monitoring", extra_labels=_extra(p)),
        "spec": {"groups": [{"name": f"fraudpipeline.{p.namespace}.{p.name}", "rules": alert_rules(p)}]},
    }


# ------------------------------------------------------------------------------------- dashboard

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every selector of the dashboard also matches the $job and $instance variables (Grafana's
# dashboard linter asks for both: they narrow a panel to one scrape job or one pod).
FILTER = ', job=~"$job", instance=~"$instance"'
RATE = "[$__rate_interval]"


def _panel(pid: int, title: str, description: str, exprs: list[tuple[str, str]], unit: str, x: int, y: int) -> dict:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": e, "legendFormat": legend}
            for i, (e, legend) in enumerate(exprs)
        ],
    }


def _variable(name: str, query: str) -> dict:
    return {
        "name": name,
        "label": name.title(),
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def panels(p: FraudPipeline) -> list[dict]:
    s = Selectors.of(p, FILTER)
    job = JOB_METRIC_PREFIX
    specs = [
        (
            "Throughput in and out",
            "Transactions the job takes (scored plus refused as dead letters) and the decisions it writes.",
            [
                (
                    f"sum(rate({job}scored{{{s.stream}}}{RATE})) + sum(rate({job}dead_letters{{{s.stream}}}{RATE}))",
                    "in",
                ),
                (f"sum(rate({job}scored{{{s.stream}}}{RATE}))", "scored"),
            ],
            "ops",
        ),
        (
            "Alert rate",
            "Fraud alerts the job writes to the alerts topic, and the model service's fraud decisions.",
            [
                (f"sum(rate({job}alerts{{{s.stream}}}{RATE}))", "alerts (job)"),
                (f'sum(rate({SERVING_DECISIONS}{{{s.model}, decision="fraud"}}{RATE}))', "fraud (service)"),
            ],
            "ops",
        ),
        (
            "Dead-letter rate",
            "Records sent to the dead-letter topic, and those of them refused (repeated id, clock far ahead).",
            [
                (f"sum(rate({job}dead_letters{{{s.stream}}}{RATE}))", "dead letters"),
                (f"sum(rate({job}refused{{{s.stream}}}{RATE}))", "refused"),
            ],
            "ops",
        ),
        (
            "Decision latency (job)",
            "From a transaction entering its scoring batch to its decision, per subtask's percentiles.",
            [
                (f'max({job}scoring_latency_ms{{{s.stream}, quantile="0.5"}})', "p50"),
                (f'max({job}scoring_latency_ms{{{s.stream}, quantile="0.99"}})', "p99"),
            ],
            "ms",
        ),
        (
            "Scoring latency (model service)",
            "Scoring requests (/score, /score_batch) from arrival to the last response byte.",
            [
                (
                    f"histogram_quantile({q}, sum by (le) (rate({SERVING_LATENCY}{{{s.model}, "
                    f"endpoint=~{SCORING_ENDPOINTS}}}{RATE})))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.99)
            ],
            "s",
        ),
        (
            "Model replicas and HPA",
            "Scoring service replicas up with their model loaded, against the HPA's desired and current "
            "counts (kube-state-metrics).",
            [
                (f"count({SERVING_MODEL}{{{s.model}}})", "up with model"),
                (f"max({HPA_DESIRED}{{{s.hpa}}})", "HPA desired"),
                (f"max({HPA_CURRENT}{{{s.hpa}}})", "HPA current"),
            ],
            "short",
        ),
        (
            "Consumer lag",
            "Records in the job's Kafka topics not read yet (Flink's pendingRecords, summed over readers).",
            [(f"sum({SOURCE_PENDING}{{{s.stream}}})", "pending records")],
            "short",
        ),
        (
            "Checkpoints",
            "Duration of the last checkpoint, and checkpoints completed and failed in the interval.",
            [
                (f"max({CHECKPOINT_DURATION}{{{s.stream}}})", "last duration (ms)"),
                (f"sum(increase({COMPLETED_CHECKPOINTS}{{{s.stream}}}{RATE}))", "completed"),
                (f"sum(increase({FAILED_CHECKPOINTS}{{{s.stream}}}{RATE}))", "failed"),
            ],
            "short",
        ),
        (
            "Model service requests",
            "Requests to the scoring service by endpoint and status.",
            [(f"sum by (endpoint, status) (rate({SERVING_REQUESTS}{{{s.model}}}{RATE}))", "{{endpoint}} {{status}}")],
            "reqps",
        ),
        (
            "Operator reconciles",
            "Reconciles of all pipelines by result (ok, retry, error), and this pipeline's readiness.",
            [
                (f'sum by (result) (rate({OPERATOR_RECONCILES}{{result=~".+"{FILTER}}}{RATE}))', "{{result}}"),
                (f"max({OPERATOR_PIPELINE_READY}{{{s.pipeline}}})", "pipeline ready"),
            ],
            "short",
        ),
    ]
    return [
        _panel(i + 1, title, desc, exprs, unit, 12 * (i % 2), 8 * (i // 2))
        for i, (title, desc, exprs, unit) in enumerate(specs)
    ]


def dashboard(p: FraudPipeline) -> dict:
    return {
        "uid": f"fp-{p.namespace}-{p.name}"[:40],
        "title": f"FraudPipeline {p.namespace}/{p.name}",
        "description": f"Throughput, decisions, latency, lag and checkpoints of FraudPipeline {p.namespace}/{p.name}.",
        "tags": ["fraudpipeline"],
        "timezone": "browser",
        "editable": False,
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
                _variable("job", "label_values(up, job)"),
                _variable("instance", 'label_values(up{job=~"$job"}, instance)'),
            ]
        },
        "panels": panels(p),
    }


def dashboard_queries(p: FraudPipeline) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every dashboard target, in order."""
    return [(panel["title"], t["expr"]) for panel in dashboard(p)["panels"] for t in panel["targets"]]


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
