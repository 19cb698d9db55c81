"""Invariants every child must keep, whatever the spec (targeted asserts beside the golden files)."""

from __future__ import annotations

import pytest
from conftest import UID, example

from fp_operator import labels
from fp_operator.builders import Capabilities, build_children
from fp_operator.builders.flink_deployment import job_args

CASES = {
    "minimal": lambda: example("minimal"),
    "full": lambda: example("full"),
    "suspended": lambda: example("minimal", suspend=True),
    "remote-scoring": lambda: example("minimal", stream__scoring__mode="remote", model__threshold=0.2),
    "monitoring": lambda: example("minimal", monitoring__enabled=True),
    "bridge": lambda: example("minimal", kafka__bridge__enabled=True),
}


@pytest.fixture(params=sorted(CASES))
def children(request):
    p = CASES[request.param]()
    return p, build_children(p, Capabilities())


def test_every_child_is_labelled_and_selector_labels_are_a_subset(children):
    p, objs = children
    for obj in objs:
        meta = obj["metadata"]
        assert labels.owner_of(meta["labels"]) == (p.namespace, p.name), meta["name"]
        assert not any(k.startswith(("kopf.", "kubectl.kubernetes.io")) for k in meta.get("annotations", {}))
        selector = (obj.get("spec") or {}).get("selector")
        if isinstance(selector, dict):
            match = selector.get("matchLabels", selector)
            pod_labels = obj["spec"].get("template", {}).get("metadata", {}).get("labels")
            if pod_labels is not None:
                assert match.items() <= pod_labels.items()


def test_owner_references_only_in_the_pipeline_namespace_and_never_on_topics(children):
    p, objs = children
    for obj in objs:
        refs = obj["metadata"].get("ownerReferences")
        if obj["kind"] == "KafkaTopic":
            assert refs is None
            assert obj["metadata"]["labels"][labels.STRIMZI_CLUSTER] == p.spec.kafka.cluster
            assert obj["metadata"]["namespace"] == p.kafka_namespace
        else:
            assert obj["metadata"]["namespace"] == p.namespace
            assert refs == [
                {
                    "apiVersion": "frauddetect.dev/v1alpha1",
                    "kind": "FraudPipeline",
                    "name": p.name,
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]


def test_hpa_keeps_control_of_replicas_unless_suspended(children):
    p, objs = children
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    assert ("replicas" in deployment["spec"]) == p.spec.suspend
    flink = next(o for o in objs if o["kind"] == "FlinkDeployment")
    assert flink["spec"]["job"]["state"] == ("suspended" if p.spec.suspend else "running")


def test_children_names_are_unique_per_kind_and_namespace(children):
    _, objs = children
    keys = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))


def test_model_pods_are_restricted_and_probed(children):
    _, objs = children
    pod = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert (
        pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    c = pod["containers"][0]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["ports"] == [{"name": "http", "containerPort": 3000, "protocol": "TCP"}]


def test_flink_job_contract():
    p = example("minimal", stream__scoring__mode="remote", model__threshold=0.2)
    args = job_args(p)
    assert args[:2] == ["-pym", "fp_flink.job"]  # PythonDriver options first
    pairs = dict(zip(args[2::2], args[3::2]))
    assert pairs["--serving-url"] == "http://payments-model.fraud.svc:3000"
    assert pairs["--threshold"] == "0.2" and "--model-path" not in pairs
    flink = next(o for o in build_children(p, Capabilities()) if o["kind"] == "FlinkDeployment")
    assert flink["spec"]["jobManager"]["resource"] == {"cpu": 0.5, "memory": "1024m"}  # released 1.15 form
    assert "resources" not in flink["spec"]["jobManager"]


def test_nothing_for_apis_the_cluster_does_not_serve():
    p = example("full")
    objs = build_children(p, Capabilities({}))
    kinds = {o["kind"] for o in objs}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"}


def test_builders_write_each_kind_at_the_registrys_version():
    from fp_operator.kinds import CHILD_KINDS

    p = example("full", stream__serviceAccount=None)
    for caps, strimzi in (
        (Capabilities(), "v1"),
        (Capabilities().at("KafkaTopic", "v1beta2").at("KafkaBridge", "v1beta2"), "v1beta2"),
    ):
        for obj in build_children(p, caps):
            kind = CHILD_KINDS[obj["kind"]]
            version = strimzi if kind.group == "kafka.strimzi.io" else kind.versions[0]
            assert obj["apiVersion"] == kind.api_version(version), obj["kind"]
