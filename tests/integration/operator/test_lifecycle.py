"""A FraudPipeline's life against the real API server: children, status, updates, suspend, drift."""

from __future__ import annotations

import pytest
from helpers import (
    children,
    condition,
    create,
    edit_spec,
    flink_running,
    model_pods_ready,
    pipeline_doc,
    topics_ready,
    wait_status,
)

from fp_devtools.bench.operator_harness import describe, wait_for
from fp_operator.builders import Capabilities, build_children
from fp_operator.diff import needs_apply, stamp
from fraudpipeline.spec import parse_pipeline

pytestmark = pytest.mark.integration


def expected_children(fp: dict) -> list[dict]:
    return build_children(parse_pipeline(fp), Capabilities())


def test_full_example_children_are_accepted_by_the_upstream_schemas(cluster, operator, namespace):
    ns, kns = namespace("fp"), namespace("kafka")
    doc = pipeline_doc(ns, "cards", example="full", kafka__namespace=kns, stream__serviceAccount=None)
    doc["spec"]["stream"].pop("serviceAccount")
    fp = create(cluster, doc)
    want = expected_children(fp)
    got = wait_for(
        lambda: c if len(c := children(cluster, ns, "cards", kns)) >= len(want) else None, 30, f"{len(want)} children"
    )
    assert {(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"]) for d in want} == set(got)
    # Applied with fieldValidation=Strict and read back: our manager owns every field we built (nothing
    # pruned by the schemas), and the operator sees nothing left to apply.
    for d in want:
        live = got[(d["kind"], d["metadata"]["namespace"], d["metadata"]["name"])]
        assert needs_apply(stamp(d), live) == [], f"{d['kind']}/{d['metadata']['name']} differs from what was built"
    fp = wait_status(cluster, ns, "cards", lambda f: f["status"].get("phase") == "Progressing", "status written")
    assert condition(fp, "MonitoringReady")["reason"] == "MonitoringApplied"
    assert fp["status"]["endpoints"]["bridge"] == f"http://cards-bridge-service.{ns}.svc:8080"
    assert all(t["name"].startswith(f"{ns}.cards.") for t in fp["status"]["topics"])


def test_status_follows_the_childrens_operators_to_ready(cluster, operator, namespace):
    ns = namespace("fp")
    create(cluster, pipeline_doc(ns))
    wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Progressing", "Progressing")
    assert topics_ready(cluster, ns, ns, "payments") == 4
    fp = wait_status(
        cluster,
        ns,
        "payments",
        lambda f: condition(f, "TopicsReady").get("status") == "True",
        "TopicsReady",
        timeout=10,
    )
    assert condition(fp, "Ready")["status"] == "False"
    flink_running(cluster, ns, "payments")
    wait_status(
        cluster,
        ns,
        "payments",
        lambda f: condition(f, "StreamReady").get("status") == "True",
        "StreamReady",
        timeout=10,
    )
    model_pods_ready(cluster, ns, "payments")
    fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Ready", "phase Ready", timeout=15)
    ready = condition(fp, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "AllComponentsReady")
    assert fp["status"]["stream"]["jobState"] == "RUNNING"
    assert fp["status"]["model"]["readyReplicas"] == 1

    def events() -> list[dict]:  # posted right after the status write that they announce
        found = [
            e
            for e in cluster.list("events.k8s.io/v1", "Event", ns)
            if e["regarding"]["name"] == "payments" and e["regarding"]["kind"] == "FraudPipeline"
        ]
        return found if {"AllComponentsReady", "ComponentsNotReady"} <= {e["reason"] for e in found} else []

    mine = wait_for(events, 10, "the events of the transitions to Progressing and Ready")
    assert {e["reportingController"] for e in mine} == {"frauddetect.dev/fraudpipeline-operator"}
    # A job failure shows up within seconds, as Degraded with the Flink error.
    flink_running(cluster, ns, "payments", state="FAILED", lifecycle="FAILED")
    fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Degraded", "Degraded", timeout=10)
    assert condition(fp, "StreamReady")["reason"] == "JobFailed"


def test_updates_flow_through_and_partitions_never_shrink(cluster, operator, namespace):
    ns = namespace("fp")
    create(cluster, pipeline_doc(ns))
    wait_status(cluster, ns, "payments", lambda f: True, "first status")
    edit_spec(
        cluster,
        ns,
        "payments",
        {
            "stream": {"parallelism": 6},
            "model": {"modelTag": "fraud-xgb:v2", "threshold": 0.42},
            "kafka": {"topics": {"transactions": {"partitions": 12}}},
        },
    )

    def updated():
        c = children(cluster, ns, "payments")
        fd = c[("FlinkDeployment", ns, "payments-stream")]["spec"]
        dep = c[("Deployment", ns, "payments-model")]["spec"]["template"]
        env = {e["name"]: e["value"] for e in dep["spec"]["containers"][0]["env"]}
        topic = c[("KafkaTopic", ns, f"{ns}.payments.transactions")]["spec"]
        return (
            fd["job"]["parallelism"] == 6
            and "--threshold" in fd["job"]["args"]
            and fd["job"]["args"][fd["job"]["args"].index("--model-tag") + 1] == "fraud-xgb:v2"
            and env.get("FRAUDPIPE_MODEL_TAG") == "fraud-xgb:v2"
            and env.get("FRAUDPIPE_THRESHOLD") == "0.42"
            and topic["partitions"] == 12
        )

    wait_for(updated, 15, "parallelism, model tag, threshold and partitions to reach the children")
    fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["model"]["tag"] == "fraud-xgb:v2", "model tag")
    assert fp["status"]["stream"]["parallelism"] == 6

    edit_spec(cluster, ns, "payments", {"kafka": {"topics": {"transactions": {"partitions": 4}}}})
    fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Invalid", "phase Invalid")
    topics = condition(fp, "TopicsReady")
    assert (topics["status"], topics["reason"]) == ("False", "PartitionDecreaseRefused")
    assert "spec.kafka.topics.transactions.partitions is 4 but the topic already has 12 partitions" in topics["message"]
    assert (
        children(cluster, ns, "payments")[("KafkaTopic", ns, f"{ns}.payments.transactions")]["spec"]["partitions"] == 12
    )
    warnings = wait_for(
        lambda: [e for e in cluster.list("events.k8s.io/v1", "Event", ns) if e["reason"] == "PartitionDecreaseRefused"],
        10,
        "the Warning event",
    )
    assert warnings[0]["type"] == "Warning"
    edit_spec(cluster, ns, "payments", {"kafka": {"topics": {"transactions": {"partitions": 12}}}})
    wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Progressing", "back to Progressing")


def test_suspend_and_resume(cluster, operator, namespace):
    ns = namespace("fp")
    create(cluster, pipeline_doc(ns))
    wait_status(cluster, ns, "payments", lambda f: True, "first status")
    edit_spec(cluster, ns, "payments", {"suspend": True})
    fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Suspended", "Suspended")
    c = children(cluster, ns, "payments")
    assert c[("FlinkDeployment", ns, "payments-stream")]["spec"]["job"]["state"] == "suspended"
    assert c[("Deployment", ns, "payments-model")]["spec"]["replicas"] == 0
    wait_for(
        lambda: cluster.list("v1", "Pod", ns, "app.kubernetes.io/instance=payments") == [],
        30,
        "the model pods to go (the real ReplicaSet controller scales down)",
    )
    assert condition(fp, "ModelReady")["reason"] == "ScaledToZero"

    edit_spec(cluster, ns, "payments", {"suspend": False})
    wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Progressing", "resumed")

    def resumed():
        c = children(cluster, ns, "payments")
        dep = c[("Deployment", ns, "payments-model")]
        # replicas left our apply: the API server defaulted it back to 1 for the HPA to take over
        owners = {
            f["manager"]
            for f in dep["metadata"].get("managedFields", [])
            if "f:replicas" in (f.get("fieldsV1") or {}).get("f:spec", {})
        }
        return (
            c[("FlinkDeployment", ns, "payments-stream")]["spec"]["job"]["state"] == "running"
            and dep["spec"]["replicas"] >= 1
            and "fraudpipeline-operator" not in owners
        )

    wait_for(resumed, 15, "the job running and the Deployment's replicas back to the HPA")


def test_hand_edits_and_deletions_are_put_back(cluster, operator, namespace, identity, audit):
    ns = namespace("fp")
    create(cluster, pipeline_doc(ns))
    wait_status(cluster, ns, "payments", lambda f: True, "first status")
    dep = children(cluster, ns, "payments")[("Deployment", ns, "payments-model")]
    image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
    since = audit.offset()
    cluster.merge_patch(
        "apps/v1",
        "Deployment",
        ns,
        "payments-model",
        {"spec": {"template": {"spec": {"containers": [{"name": "model", "image": "evil/image:1"}]}}}},
        manager="kubectl-edit",
    )
    cluster.delete("v1", "Service", ns, "payments-model")
    cluster.delete("kafka.strimzi.io/v1", "KafkaTopic", ns, f"{ns}.payments.labels")

    def repaired():
        c = children(cluster, ns, "payments")
        d = c.get(("Deployment", ns, "payments-model"))
        return (
            d
            and d["spec"]["template"]["spec"]["containers"][0]["image"] == image
            and ("Service", ns, "payments-model") in c
            and ("KafkaTopic", ns, f"{ns}.payments.labels") in c
        )

    wait_for(repaired, 15, "the image, the Service and the KafkaTopic to be put back")
    writes = [w for w in describe(audit.writes(identity.username, since)) if "/status" not in w]
    # One apply each (no fight, no loop); the two deleted objects are recreated by apply (a patch).
    assert sorted(writes) == sorted(
        [
            f"patch deployments {ns}/payments-model -> 200",
            f"patch services {ns}/payments-model -> 201",
            f"patch kafkatopics {ns}/{ns}.payments.labels -> 201",
        ]
    ), writes
