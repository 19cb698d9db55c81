"""Readiness rules for each child kind, and the phase they add up to."""

from __future__ import annotations

import pytest
from conftest import example

from fp_operator.builders import Capabilities, build_children
from fp_operator.readiness import kafka_topic
from fp_operator.status import Observation, compute_status, model_verdict, stream_verdict

NOW = "2026-01-01T00:00:00Z"


def topic(generation=1, observed=1, ready="True", reason=None, message=None):
    c = {"type": "Ready", "status": ready}
    if reason:
        c.update(reason=reason, message=message)
    return {"metadata": {"generation": generation}, "status": {"observedGeneration": observed, "conditions": [c]}}


def test_topic_ready_only_for_the_current_generation():
    assert kafka_topic(topic()).ready
    assert not kafka_topic(topic(generation=2, observed=1)).ready
    r = kafka_topic(topic(ready="False", reason="KafkaError", message="boom"))
    assert (r.ready, r.failed, r.message) == (False, True, "KafkaError: boom")
    assert kafka_topic(None).message == "not created yet" and not kafka_topic(None).failed


def flink(lifecycle, job, jm="READY", error=None, generation=1, observed=1):
    st = {
        "lifecycleState": lifecycle,
        "jobStatus": {"state": job},
        "jobManagerDeploymentStatus": jm,
        "observedGeneration": observed,
    }
    if error:
        st["error"] = error
    return {"metadata": {"generation": generation}, "spec": {"job": {"parallelism": 2}}, "status": st}


@pytest.mark.parametrize(
    "live,status,reason",
    [
        (flink("STABLE", "RUNNING"), "True", "JobRunning"),
        (flink("DEPLOYED", "RUNNING"), "True", "JobRunning"),
        (flink("DEPLOYED", "RECONCILING"), "False", "JobStarting"),
        (flink("STABLE", "RUNNING", jm="DEPLOYING"), "False", "JobStarting"),
        (flink("STABLE", "RUNNING", generation=2), "False", "JobStarting"),
        (flink("FAILED", "FAILED", error="ClassNotFound"), "False", "JobFailed"),
        (flink("ROLLED_BACK", "RUNNING"), "False", "JobFailed"),
    ],
)
def test_stream_readiness(live, status, reason):
    p = example("minimal")
    obs = Observation(desired=[], live={("FlinkDeployment", "fraud", "payments-stream"): live}, caps=Capabilities())
    v, _ = stream_verdict(p, obs)
    assert (v.status, v.reason.value) == (status, reason)


def deployment(replicas=1, updated=1, available=1, ready=1, total=1, generation=1, observed=1):
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {}},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": ready,
        },
    }


@pytest.mark.parametrize(
    "live,status",
    [
        (deployment(), "True"),
        (deployment(available=0, ready=0), "False"),
        (deployment(replicas=2, updated=1, total=2), "False"),  # rollout of a new model tag in progress
        (deployment(generation=2), "False"),
    ],
)
def test_model_readiness(live, status):
    p = example("minimal")
    obs = Observation(desired=[], live={("Deployment", "fraud", "payments-model"): live}, caps=Capabilities())
    assert model_verdict(p, obs)[0].status == status


def test_all_ready_makes_the_pipeline_ready_and_crd_missing_degrades_it():
    p = example("minimal")
    desired = build_children(p, Capabilities())
    live = {
        ("KafkaTopic", d["metadata"]["namespace"], d["metadata"]["name"]): topic()
        for d in desired
        if d["kind"] == "KafkaTopic"
    }
    live[("FlinkDeployment", "fraud", "payments-stream")] = flink("STABLE", "RUNNING")
    live[("Deployment", "fraud", "payments-model")] = deployment()
    s = compute_status(p, Observation(desired, live, Capabilities()), None, NOW)
    assert s["phase"] == "Ready"
    assert all(c["status"] == "True" for c in s["conditions"])
    s = compute_status(p, Observation(desired, live, Capabilities().without("FlinkDeployment")), s, NOW)
    ready = next(c for c in s["conditions"] if c["type"] == "Ready")
    assert s["phase"] == "Degraded" and ready["reason"] == "ComponentFailed"
    assert "install the Flink Kubernetes Operator" in ready["message"]


def test_reasons_are_the_crds_enum():
    """The CRD's status schema lists exactly status.Reason, so the API server refuses any other."""
    from fp_operator.crd import build_crd
    from fp_operator.status import Reason

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    reason = schema["properties"]["conditions"]["items"]["properties"]["reason"]
    assert reason["enum"] == [r.value for r in Reason]
