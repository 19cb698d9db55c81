"""What `fraudpipe up` runs for a FraudPipeline: computed from the spec, no I/O.

The streaming job gets the operator's own arguments (`job_args`, the image contract) with the
in-cluster addresses swapped for local ones; Prometheus gets the operator's alert rules and
targets labelled as the rules' selectors expect on a cluster. What a cluster needs and one
machine cannot use (images, resources, autoscaling, HA storage) is listed once as ignored.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fp_operator import names
from fp_operator.builders.flink_deployment import JOB_MODULE, job_args
from fp_operator.builders.monitoring import build_prometheus_rule
from fraudpipeline.spec import FraudPipeline, TopicSpec

PYTHON = sys.executable
FRAUDPIPE = [PYTHON, "-m", "fraudpipeline.cli"]
SERVICE = "fp_serving.service:FraudScorer"
# The roles whose topics the job and the ingest API need (scores only when the spec names it).
ROLES = ("transactions", "labels", "alerts", "deadLetter", "scores")


@dataclass(frozen=True)
class Ports:
    """Every port the local mode listens on (127.0.0.1)."""

    kafka: int
    kafka_controller: int
    ingest: int
    serving: int
    flink_metrics: int
    ui: int
    prometheus: int = 0  # 0: any free port (a record from before Prometheus had a fixed one)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class TopicPlan:
    role: str
    name: str
    partitions: int
    config: dict[str, str]


@dataclass(frozen=True)
class Notes:
    """What the spec asks for that runs differently here, each said once at start."""

    ignored: list[str] = field(default_factory=list)  # fields that only mean something on Kubernetes
    adapted: list[str] = field(default_factory=list)  # fields honoured in a one-machine form


# Fields read only by the operator's Kubernetes objects, by spec section. Images are always listed
# (they are required); the others only when the file sets them.
_K8S_ONLY = {
    "kafka": ("cluster", "namespace", "bootstrap_servers", "deletion_policy"),
    "kafka.bridge": ("enabled", "replicas"),
    "model": ("image", "image_pull_policy", "resources", "autoscaling"),
    "stream": (
        "image",
        "image_pull_policy",
        "flink_version",
        "jar_uri",
        "max_parallelism",
        "upgrade_mode",
        "state",
        "job_manager",
        "task_manager",
        "autoscaler",
        "service_account",
        "flink_configuration",
    ),
    "stream.scoring": ("model_path",),
    "monitoring": ("enabled", "release", "dashboards"),
}
_ALWAYS = {("model", "image"), ("stream", "image")}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    out = first + "".join(r.capitalize() for r in rest)
    return {"jarUri": "jarURI"}.get(out, out)


def _section(p: FraudPipeline, dotted: str):
    node: Any = p.spec
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def notes(p: FraudPipeline, parallelism: int) -> Notes:
    ignored: list[str] = []
    for section, fields in _K8S_ONLY.items():
        model = _section(p, section)
        for f in fields:
            if (section, f) in _ALWAYS or f in model.model_fields_set:
                ignored.append(f"spec.{'.'.join(_camel(s) for s in section.split('.'))}.{_camel(f)}")
    adapted: list[str] = []
    s = p.spec.stream
    if parallelism != s.parallelism:
        adapted.append(
            f"spec.stream.parallelism {s.parallelism} runs as {parallelism}: the local mini-cluster is one "
            "TaskManager whose Python steps share one interpreter, where a second subtask only adds overhead "
            "(docs/streaming.md); --parallelism N overrides"
        )
    for role, topic in p.spec.kafka.topics.all().items():
        if topic.replicas and topic.replicas > 1:
            adapted.append(f"spec.kafka.topics.{role}.replicas {topic.replicas} is 1 here: one broker")
        mir = topic.config.get("min.insync.replicas")
        if mir is not None and int(mir) > 1:
            adapted.append(
                f"spec.kafka.topics.{role}.config min.insync.replicas {mir} is 1 here: with one replica, "
                "acks=all writes would be refused"
            )
    if p.spec.suspend:
        adapted.append("spec.suspend is true: the streaming job and the model service are not started")
    return Notes(ignored, adapted)


def topics(p: FraudPipeline) -> list[TopicPlan]:
    out = []
    for role, topic in p.spec.kafka.topics.all().items():
        out.append(TopicPlan(role, p.topic_name(role), topic.partitions, topic_config(topic)))
    return out


def topic_config(topic: TopicSpec) -> dict[str, str]:
    config = {k: str(v) for k, v in topic.config.items()}
    if "min.insync.replicas" in config and int(config["min.insync.replicas"]) > 1:
        config["min.insync.replicas"] = "1"
    return config


def _with_flag(args: list[str], flag: str, value: str) -> list[str]:
    out = list(args)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


def stream_args(p: FraudPipeline, bootstrap: str, model_dir: Path, serving_url: str) -> list[str]:
    """The operator's job arguments (docs/image-contracts.md) with local addresses."""
    args = job_args(p)
    if args[:2] == ["-pym", JOB_MODULE]:
        args = args[2:]
    args = _with_flag(args, "--bootstrap-servers", bootstrap)
    if p.spec.stream.scoring.mode == "embedded":
        args = _with_flag(args, "--model-path", str(model_dir))
    else:
        args = _with_flag(args, "--serving-url", serving_url)
    return args


def stream_command(
    p: FraudPipeline,
    bootstrap: str,
    model_dir: Path,
    serving_url: str,
    state_dir: Path,
    metrics_port: int,
    parallelism: int,
) -> list[str]:
    return [
        *FRAUDPIPE,
        "stream",
        "run",
        *stream_args(p, bootstrap, model_dir, serving_url),
        "--state-dir",
        str(state_dir),
        "--checkpoint-interval",
        p.spec.stream.checkpoint_interval.replace(" ", ""),
        "--parallelism",
        str(parallelism),
        "--metrics-port",
        str(metrics_port),
        "--quiet",
    ]


def serving_command(port: int) -> list[str]:
    return [PYTHON, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)]


def serving_env(p: FraudPipeline, base: dict[str, str], bentoml_home: Path) -> dict[str, str]:
    """The serving image's environment contract, from the spec (docs/serving-api.md)."""
    env = {k: v for k, v in base.items() if not k.startswith("FRAUDPIPE_")}
    env.update(
        {
            "FRAUDPIPE_MODEL_TAG": p.spec.model.model_tag,
            "FRAUDPIPE_WORKERS": str(p.spec.model.workers),
            "BENTOML_HOME": str(bentoml_home),
            "BENTOML_DO_NOT_TRACK": "true",
        }
    )
    if p.spec.model.threshold is not None:
        env["FRAUDPIPE_THRESHOLD"] = repr(float(p.spec.model.threshold))
    return env


def ingest_command(pipeline_file: Path, bootstrap: str, port: int) -> list[str]:
    return [
        *FRAUDPIPE,
        "ingest",
        "run",
        "-f",
        str(pipeline_file),
        "--bootstrap-servers",
        bootstrap,
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]


def replay_command(pipeline_file: Path, ingest_url: str, rate: str, limit: int | None) -> list[str]:
    cmd = [*FRAUDPIPE, "replay", "-f", str(pipeline_file), "--via", "http", ingest_url, "--rate", rate, "--json"]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    return cmd


def scrape_targets(p: FraudPipeline, ports: Ports) -> dict[str, list[dict]]:
    """Prometheus file_sd target files, labelled as on a cluster so the operator's rules select them.

    A ServiceMonitor's targets get job="<service>" and a PodMonitor's job="<namespace>/<podmonitor>"
    (fp_operator.builders.monitoring._selectors); `namespace` is the pipeline's.
    """
    base = {"namespace": p.namespace, "fraudpipeline": p.name}
    return {
        "model": [
            {
                "targets": [f"127.0.0.1:{ports.serving}"],
                "labels": {**base, "job": names.model(p), "component": "model"},
            }
        ],
        "stream": [
            {
                "targets": [f"127.0.0.1:{ports.flink_metrics}"],
                "labels": {**base, "job": f"{p.namespace}/{names.stream(p)}", "component": "stream"},
            }
        ],
        "ingest": [
            {
                "targets": [f"127.0.0.1:{ports.ingest}"],
                "labels": {**base, "job": f"{p.name}-ingest", "component": "ingest"},
            }
        ],
    }


def alert_rules(p: FraudPipeline) -> dict:
    """The operator's PrometheusRule groups as a Prometheus rules file."""
    # The builder stamps an owner reference, which needs the uid the API server would give.
    stamped = p.model_copy(update={"metadata": p.metadata.model_copy(update={"uid": p.metadata.uid or "local"})})
    return {"groups": build_prometheus_rule(stamped)["spec"]["groups"]}
