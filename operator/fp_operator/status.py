"""From the children's observed state to the FraudPipeline's status (pure: no I/O, `now` passed in).

Each condition has a reason from the closed set below: the CRD's status schema lists it as an enum
(crd.py) and docs/operator.md documents it, so that tools and people can key on it; messages are
for people. What each child's own status means is read by the registry's readers (readiness.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fp_operator import labels, names
from fp_operator.builders import Capabilities
from fp_operator.kinds import CHILD_KINDS, MONITORING_KINDS
from fp_operator.readiness import Readiness
from fraudpipeline.spec import FraudPipeline, FraudPipelineStatus


class Reason(StrEnum):
    # TopicsReady
    ALL_TOPICS_READY = "AllTopicsReady"
    TOPICS_NOT_READY = "TopicsNotReady"
    TOPIC_ERROR = "TopicError"
    PARTITION_DECREASE_REFUSED = "PartitionDecreaseRefused"
    KAFKA_TOPIC_CRD_MISSING = "KafkaTopicCRDMissing"
    # StreamReady
    JOB_RUNNING = "JobRunning"
    JOB_STARTING = "JobStarting"
    JOB_SUSPENDED = "JobSuspended"
    JOB_FAILED = "JobFailed"
    FLINK_CRD_MISSING = "FlinkDeploymentCRDMissing"
    # ModelReady
    REPLICAS_AVAILABLE = "ReplicasAvailable"
    REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
    SCALED_TO_ZERO = "ScaledToZero"
    ROLLOUT_FAILED = "RolloutFailed"
    # MonitoringReady
    MONITORING_DISABLED = "MonitoringDisabled"
    MONITORING_APPLIED = "MonitoringApplied"
    MONITORING_CRD_MISSING = "MonitoringCRDMissing"
    MONITORING_PENDING = "MonitoringPending"
    # Ready
    ALL_COMPONENTS_READY = "AllComponentsReady"
    COMPONENTS_NOT_READY = "ComponentsNotReady"
    COMPONENT_FAILED = "ComponentFailed"
    SUSPENDED = "Suspended"
    APPLY_FAILED = "ApplyFailed"
    INVALID_SPEC = "InvalidSpec"


FAILING = {
    Reason.TOPIC_ERROR,
    Reason.JOB_FAILED,
    Reason.ROLLOUT_FAILED,
    Reason.KAFKA_TOPIC_CRD_MISSING,
    Reason.FLINK_CRD_MISSING,
}
INVALID = {Reason.PARTITION_DECREASE_REFUSED, Reason.INVALID_SPEC}


@dataclass
class Observation:
    """What one reconcile saw and did, the input of `compute_status`."""

    desired: list[dict]
    live: dict[tuple[str, str, str], dict]  # (kind, namespace, name) -> object as watched
    caps: Capabilities
    refused_partitions: list[tuple[str, int, int]] = field(default_factory=list)  # (role, live, desired)
    apply_errors: list[str] = field(default_factory=list)

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return self.live.get((kind, namespace, name))


@dataclass(frozen=True)
class Verdict:
    status: str  # "True" | "False" | "Unknown"
    reason: Reason
    message: str


def _read(kind: str, obj: dict | None) -> Readiness:
    reader = CHILD_KINDS[kind].ready
    assert reader is not None, kind
    return reader(obj)


# ------------------------------------------------------------------------------------------ topics


def topics_verdict(p: FraudPipeline, obs: Observation) -> tuple[Verdict, list[dict]]:
    if not obs.caps.serves("KafkaTopic"):
        return Verdict(
            "False",
            Reason.KAFKA_TOPIC_CRD_MISSING,
            "kafka.strimzi.io KafkaTopic is not served by this cluster: install the Strimzi CRDs",
        ), []
    topics = [d for d in obs.desired if d["kind"] == "KafkaTopic"]
    summary, errors, ready_count = [], [], 0
    for d in topics:
        meta = d["metadata"]
        live = obs.get("KafkaTopic", meta["namespace"], meta["name"])
        r = _read("KafkaTopic", live)
        ready_count += r.ready
        if r.failed:
            errors.append(f"{d['spec']['topicName']}: {r.message}")
        partitions = ((live or {}).get("spec") or {}).get("partitions", d["spec"].get("partitions"))
        entry = {
            "role": meta["labels"].get(labels.TOPIC_ROLE, ""),
            "name": meta["name"],
            "topicName": d["spec"]["topicName"],
            "ready": r.ready,
            "partitions": partitions,
        }
        if r.message:
            entry["message"] = r.message
        summary.append(entry)
    if obs.refused_partitions:
        msgs = [
            f"spec.kafka.topics.{role}.partitions is {want} but the topic already has {have} partitions; "
            f"Kafka cannot remove partitions: set it to {have} or more"
            for role, have, want in obs.refused_partitions
        ]
        return Verdict("False", Reason.PARTITION_DECREASE_REFUSED, "; ".join(msgs)), summary
    if errors:
        return Verdict("False", Reason.TOPIC_ERROR, "; ".join(errors)), summary
    if ready_count == len(topics):
        return Verdict("True", Reason.ALL_TOPICS_READY, f"{ready_count} of {len(topics)} topics ready"), summary
    return Verdict(
        "False",
        Reason.TOPICS_NOT_READY,
        f"{ready_count} of {len(topics)} topics ready; Strimzi's Topic Operator for cluster "
        f"'{p.spec.kafka.cluster}' in namespace '{p.kafka_namespace}' creates them",
    ), summary


# ------------------------------------------------------------------------------------------ stream


def stream_verdict(p: FraudPipeline, obs: Observation) -> tuple[Verdict, dict | None]:
    name = names.stream(p)
    if not obs.caps.serves("FlinkDeployment"):
        return Verdict(
            "False",
            Reason.FLINK_CRD_MISSING,
            f"{CHILD_KINDS['FlinkDeployment'].api_version()} FlinkDeployment is not served: "
            "install the Flink Kubernetes Operator",
        ), None
    live = obs.get("FlinkDeployment", p.namespace, name)
    st = (live or {}).get("status") or {}
    lifecycle = st.get("lifecycleState")
    job_state = (st.get("jobStatus") or {}).get("state")
    summary = {"name": name, "parallelism": p.spec.stream.parallelism}
    if live is not None:
        summary["parallelism"] = ((live.get("spec") or {}).get("job") or {}).get("parallelism")
    for key, value in (("lifecycleState", lifecycle), ("jobState", job_state), ("error", st.get("error") or None)):
        if value:
            summary[key] = value[:1000] if isinstance(value, str) else value
    r = _read("FlinkDeployment", live)
    if live is None:
        return Verdict("False", Reason.JOB_STARTING, r.message), summary
    if p.spec.suspend:
        done = lifecycle == "SUSPENDED" or job_state in ("SUSPENDED", "CANCELED", "FINISHED")
        where = f"lifecycleState={lifecycle or '-'}, job={job_state or '-'}"
        return Verdict(
            "False", Reason.JOB_SUSPENDED, "job suspended" if done else f"suspending the job ({where})"
        ), summary
    if r.failed:
        return Verdict("False", Reason.JOB_FAILED, r.message), summary
    if r.ready:
        return Verdict("True", Reason.JOB_RUNNING, r.message), summary
    return Verdict("False", Reason.JOB_STARTING, r.message), summary


# ------------------------------------------------------------------------------------------- model


def model_verdict(p: FraudPipeline, obs: Observation) -> tuple[Verdict, dict]:
    name = names.model(p)
    live = obs.get("Deployment", p.namespace, name)
    spec = (live or {}).get("spec") or {}
    st = (live or {}).get("status") or {}
    desired = spec.get("replicas", 1) if live is not None else 0
    applied_tag = (((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}).get(
        labels.MODEL_TAG_ANNOTATION, p.spec.model.model_tag
    )
    summary = {
        "name": name,
        "tag": applied_tag,
        "readyReplicas": st.get("readyReplicas", 0) or 0,
        "desiredReplicas": desired,
    }
    r = _read("Deployment", live)
    if live is None:
        return Verdict("False", Reason.REPLICAS_UNAVAILABLE, r.message), summary
    if p.spec.suspend:
        return Verdict(
            "False", Reason.SCALED_TO_ZERO, f"suspended: {st.get('replicas', 0) or 0} replicas left"
        ), summary
    if r.failed:
        return Verdict("False", Reason.ROLLOUT_FAILED, r.message), summary
    return Verdict(
        "True" if r.ready else "False",
        Reason.REPLICAS_AVAILABLE if r.ready else Reason.REPLICAS_UNAVAILABLE,
        f"{r.message}, model {applied_tag}",
    ), summary


# -------------------------------------------------------------------------------------- monitoring


def monitoring_verdict(p: FraudPipeline, obs: Observation) -> Verdict:
    mon = p.spec.monitoring
    if not mon.enabled:
        return Verdict("True", Reason.MONITORING_DISABLED, "spec.monitoring.enabled is false")
    wanted = {"ServiceMonitor", "PodMonitor"} | ({"PrometheusRule"} if mon.alerts else set())
    missing = sorted(k for k in wanted if not obs.caps.serves(k))
    if missing:
        return Verdict(
            "False",
            Reason.MONITORING_CRD_MISSING,
            f"{', '.join(missing)} not served by this cluster: install the Prometheus Operator CRDs",
        )
    absent = [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in obs.desired
        if d["kind"] in MONITORING_KINDS | {"ConfigMap"}
        and obs.get(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) is None
    ]
    if absent:
        return Verdict("False", Reason.MONITORING_PENDING, f"not created yet: {', '.join(absent)}")
    return Verdict(
        "True",
        Reason.MONITORING_APPLIED,
        "ServiceMonitor, PodMonitor"
        + (", PrometheusRule" if mon.alerts else "")
        + (", dashboard" if mon.dashboards else "")
        + f" applied with release={mon.release}",
    )


# ------------------------------------------------------------------------------------------ status


def compute_status(p: FraudPipeline, obs: Observation, previous: dict | None, now: str) -> dict:
    """The whole status object, in the API's camelCase, ready for the status subresource."""
    generation = p.metadata.generation
    topics_v, topics = topics_verdict(p, obs)
    stream_v, stream = stream_verdict(p, obs)
    model_v, model = model_verdict(p, obs)
    monitoring_v = monitoring_verdict(p, obs)
    parts = {"TopicsReady": topics_v, "StreamReady": stream_v, "ModelReady": model_v}

    invalid = [v for v in parts.values() if v.reason in INVALID]
    failing = [f"{t}: {v.message}" for t, v in parts.items() if v.reason in FAILING]
    waiting = [f"{t}: {v.message}" for t, v in parts.items() if v.status != "True"]
    if invalid:
        phase, ready = "Invalid", Verdict("False", invalid[0].reason, invalid[0].message)
    elif obs.apply_errors:
        phase, ready = "Degraded", Verdict("False", Reason.APPLY_FAILED, "; ".join(obs.apply_errors)[:2000])
    elif p.spec.suspend:
        phase, ready = (
            "Suspended",
            Verdict("False", Reason.SUSPENDED, "spec.suspend is true: job suspended, model scaled to zero"),
        )
    elif failing:
        phase, ready = "Degraded", Verdict("False", Reason.COMPONENT_FAILED, "; ".join(failing)[:2000])
    elif waiting:
        phase, ready = "Progressing", Verdict("False", Reason.COMPONENTS_NOT_READY, "; ".join(waiting)[:2000])
    else:
        phase, ready = "Ready", Verdict("True", Reason.ALL_COMPONENTS_READY, "topics, stream job and model ready")

    old = {c.get("type"): c for c in (previous or {}).get("conditions") or []}
    conditions = []
    for ctype, v in (*parts.items(), ("MonitoringReady", monitoring_v), ("Ready", ready)):
        before = old.get(ctype) or {}
        changed = before.get("status") != v.status
        conditions.append(
            {
                "type": ctype,
                "status": v.status,
                "reason": v.reason.value,
                "message": v.message,
                "lastTransitionTime": now
                if changed or not before.get("lastTransitionTime")
                else before["lastTransitionTime"],
                "observedGeneration": generation,
            }
        )
    endpoints = {"bootstrapServers": p.bootstrap_servers, "serving": names.serving_url(p)}
    if stream is not None:
        endpoints["flinkUI"] = names.flink_ui_url(p)
    if p.spec.kafka.bridge.enabled and obs.caps.serves("KafkaBridge"):
        bridge = obs.get("KafkaBridge", p.namespace, names.bridge(p))
        endpoints["bridge"] = ((bridge or {}).get("status") or {}).get("url") or names.bridge_url(p)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": conditions,
        "topics": topics,
        "model": model,
        "endpoints": endpoints,
    }
    if stream is not None:
        status["stream"] = stream
    if obs.caps.kafka_api_version:
        status["kafkaApiVersion"] = obs.caps.kafka_api_version
    # Validate against the same model the CRD is generated from: a status the API server would
    # prune must fail here first.
    FraudPipelineStatus.model_validate(status)
    return status


def same_status(a: dict | None, b: dict | None) -> bool:
    """Equal for the purpose of writing: everything compared, timestamps included."""
    return (a or {}) == (b or {})
