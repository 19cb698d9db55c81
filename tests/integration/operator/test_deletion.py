"""Deleting a pipeline: topics by our finalizer (released first with Retain), the rest by the real
garbage collector of kube-controller-manager."""

from __future__ import annotations

import pytest
from helpers import children, create, pipeline_doc, wait_status

from fp_devtools.bench.operator_harness import describe, wait_for

pytestmark = pytest.mark.integration
STRIMZI_FINALIZER = "strimzi.io/topic-operator"


def hold_topics_like_strimzi(cluster, kafka_ns, ns, name) -> list[str]:
    """Strimzi's Topic Operator puts its finalizer on every KafkaTopic it manages."""
    names = [k[2] for k in children(cluster, ns, name, kafka_ns) if k[0] == "KafkaTopic"]
    for topic in names:
        cluster.merge_patch(
            "kafka.strimzi.io/v1",
            "KafkaTopic",
            kafka_ns,
            topic,
            {"metadata": {"finalizers": [STRIMZI_FINALIZER]}},
            manager="strimzi-topic-operator",
        )
    return names


def release_finalizer(cluster, kafka_ns, topic):
    cluster.merge_patch(
        "kafka.strimzi.io/v1",
        "KafkaTopic",
        kafka_ns,
        topic,
        {"metadata": {"finalizers": None}},
        manager="strimzi-topic-operator",
    )


@pytest.mark.usefixtures("kube_gc")
def test_retain_releases_topics_in_another_namespace_before_deleting_them(
    cluster, operator, namespace, audit, identity
):
    ns, kns = namespace("fp"), namespace("kafka")
    create(cluster, pipeline_doc(ns, kafka__namespace=kns))
    wait_status(cluster, ns, "payments", lambda f: True, "first status")
    topics = hold_topics_like_strimzi(cluster, kns, ns, "payments")
    assert len(topics) == 4
    since = audit.offset()
    cluster.delete("frauddetect.dev/v1alpha1", "FraudPipeline", ns, "payments")
    wait_for(lambda: cluster.pipeline(ns, "payments") is None, 30, "the pipeline to be deleted (finalizer done)")
    for topic in topics:
        kt = cluster.get("kafka.strimzi.io/v1", "KafkaTopic", kns, topic)
        # Deletion requested while Strimzi still holds it, and released: Strimzi keeps the Kafka topic.
        assert kt["metadata"].get("deletionTimestamp"), topic
        assert kt["metadata"]["annotations"]["strimzi.io/managed"] == "false", topic
    ops = [w for w in describe(audit.writes(identity.username, since)) if "kafkatopics" in w]
    for topic in topics:
        mine = [w.split()[0] for w in ops if w.split()[2] == f"{kns}/{topic}"]
        assert mine == ["patch", "delete"], (topic, ops)
    for topic in topics:
        release_finalizer(cluster, kns, topic)
    wait_for(
        lambda: not [k for k in children(cluster, ns, "payments", kns)],
        60,
        "every child gone (topics released by Strimzi, the rest garbage-collected)",
    )


@pytest.mark.usefixtures("kube_gc")
def test_delete_policy_deletes_topics_and_the_garbage_collector_the_rest(cluster, operator, namespace, audit, identity):
    ns = namespace("fp")
    create(cluster, pipeline_doc(ns, kafka__deletionPolicy="Delete", kafka__bridge__enabled=True))
    wait_status(cluster, ns, "payments", lambda f: True, "first status")
    before = children(cluster, ns, "payments")
    assert len(before) == 12
    topics = hold_topics_like_strimzi(cluster, ns, ns, "payments")
    since = audit.offset()
    cluster.delete("frauddetect.dev/v1alpha1", "FraudPipeline", ns, "payments")
    wait_for(lambda: cluster.pipeline(ns, "payments") is None, 30, "the pipeline to be deleted")
    for topic in topics:
        kt = cluster.get("kafka.strimzi.io/v1", "KafkaTopic", ns, topic)
        assert kt["metadata"].get("deletionTimestamp")
        assert "strimzi.io/managed" not in (kt["metadata"].get("annotations") or {})  # Strimzi deletes the data
        release_finalizer(cluster, ns, topic)
    wait_for(lambda: not children(cluster, ns, "payments"), 60, "every child gone")
    ops = describe(audit.writes(identity.username, since))
    # The operator deleted only the topics; Deployment, Service, HPA, ... went by owner reference.
    deleted = sorted(w.split()[1] for w in ops if w.startswith("delete"))
    assert deleted == ["kafkatopics"] * 4, ops
