"""Reconcile logic against the in-memory apply layer: writes only when something differs."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, UID
from fake_kube import FakeKube

from fp_operator.cache import ObjectCache
from fp_operator.reconciler import Reconciler

KEY = ("fraud", "payments")


@pytest.fixture
def world():
    kube, cache = FakeKube(), ObjectCache()
    doc = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    doc["metadata"].update({"uid": UID, "generation": 1})
    cache.observe("ADDED", kube.add(doc))
    rec = Reconciler(kube, cache, now=lambda: "2026-01-01T00:00:00Z")

    def sync():
        """What the watches would deliver: every stored object's latest version into the cache."""
        for obj in kube.objects.values():
            cache.observe("MODIFIED", copy.deepcopy(obj))

    def edit(**spec):
        obj = kube.objects[("FraudPipeline", *KEY)]
        for dotted, value in spec.items():
            node = obj["spec"]
            *parents, leaf = dotted.split("__")
            for k in parents:
                node = node.setdefault(k, {})
            node[leaf] = value
        obj["metadata"]["generation"] += 1
        cache.observe("MODIFIED", kube._bump(obj))

    return kube, cache, rec, sync, edit


def status(kube):
    return kube.objects[("FraudPipeline", *KEY)]["status"]


def cond(kube, ctype):
    return next(c for c in status(kube)["conditions"] if c["type"] == ctype)


def test_first_reconcile_adds_the_finalizer_creates_children_then_nothing_more(world):
    kube, cache, rec, sync, _ = world
    rec.reconcile(KEY)
    assert kube.calls[0] == ("patch", "FraudPipeline", "payments")  # the finalizer, before any child
    assert kube.objects[("FraudPipeline", *KEY)]["metadata"]["finalizers"] == ["frauddetect.dev/finalizer"]
    applied = [c for c in kube.calls if c[0] == "apply"]
    assert len(applied) == 11
    assert status(kube)["phase"] == "Progressing"
    kube.calls.clear()
    sync()
    rec.reconcile(KEY)
    rec.reconcile(KEY)
    assert kube.writes() == []


def test_partition_decrease_is_refused_with_a_condition(world):
    kube, cache, rec, sync, edit = world
    rec.reconcile(KEY)
    sync()
    edit(kafka__topics__transactions={"partitions": 1})
    rec.reconcile(KEY)
    topic = kube.objects[("KafkaTopic", "fraud", "fraud.payments.transactions")]
    assert topic["spec"]["partitions"] == 3
    c = cond(kube, "TopicsReady")
    assert (c["status"], c["reason"]) == ("False", "PartitionDecreaseRefused")
    assert "spec.kafka.topics.transactions.partitions is 1 but the topic already has 3" in c["message"]
    assert status(kube)["phase"] == "Invalid"
    assert any(e["reason"] == "PartitionDecreaseRefused" and e["warning"] for e in kube.events)


def test_disabled_bridge_is_pruned_but_foreign_objects_are_not(world):
    kube, cache, rec, sync, edit = world
    edit(kafka__bridge__enabled=True)
    rec.reconcile(KEY)
    assert ("KafkaBridge", "fraud", "payments") in kube.objects
    sync()
    foreign = copy.deepcopy(kube.objects[("Service", "fraud", "payments-model")])
    foreign["metadata"].update(name="someone-elses", ownerReferences=[{"uid": "other"}])
    cache.observe("ADDED", kube.add(foreign))
    edit(kafka__bridge__enabled=False)
    rec.reconcile(KEY)
    assert ("KafkaBridge", "fraud", "payments") not in kube.objects
    assert ("Service", "fraud", "someone-elses") in kube.objects


def test_removed_scores_topic_is_released_before_deletion(world):
    kube, cache, rec, sync, edit = world
    edit(kafka__topics__scores={"partitions": 2})
    rec.reconcile(KEY)
    sync()
    edit(kafka__topics__scores=None)
    kube.objects[("FraudPipeline", *KEY)]["spec"]["kafka"]["topics"].pop("scores")
    cache.observe("MODIFIED", kube._bump(kube.objects[("FraudPipeline", *KEY)]))
    kube.calls.clear()
    rec.reconcile(KEY)
    topic_calls = [c for c in kube.calls if c[1] == "KafkaTopic"]
    assert topic_calls == [
        ("patch", "KafkaTopic", "fraud.payments.scores"),
        ("delete", "KafkaTopic", "fraud.payments.scores"),
    ]


def test_suspend_scales_to_zero_and_resume_drops_replicas(world):
    kube, cache, rec, sync, edit = world
    rec.reconcile(KEY)
    sync()
    edit(suspend=True)
    rec.reconcile(KEY)
    deployment = kube.objects[("Deployment", "fraud", "payments-model")]
    assert deployment["spec"]["replicas"] == 0
    assert kube.objects[("FlinkDeployment", "fraud", "payments-stream")]["spec"]["job"]["state"] == "suspended"
    assert status(kube)["phase"] == "Suspended"
    sync()
    edit(suspend=False)
    kube.calls.clear()
    rec.reconcile(KEY)
    assert ("apply", "Deployment", "payments-model") in kube.calls  # the hash changed: replicas must go


def test_a_transient_apply_error_is_retried(world):
    kube, cache, rec, sync, _ = world
    kube.fail_kinds, kube.fail_status = {"FlinkDeployment"}, 500
    assert rec.reconcile(KEY) is True  # retry (after the runtime's backoff)
    assert status(kube)["phase"] == "Degraded"
    c = cond(kube, "Ready")
    assert c["reason"] == "ApplyFailed" and "FlinkDeployment/payments-stream" in c["message"]
    assert "(retrying)" in c["message"]


def test_a_permanent_refusal_is_reported_and_not_retried_until_something_changes(world):
    kube, cache, rec, sync, edit = world
    kube.fail_kinds = {"FlinkDeployment"}  # 422: say, a webhook refuses it
    assert rec.reconcile(KEY) is False
    c = cond(kube, "Ready")
    assert c["reason"] == "ApplyFailed" and "refused by the test" in c["message"] and "retrying" not in c["message"]
    sync()
    kube.calls.clear()
    rec.reconcile(KEY)  # e.g. the event of our own status write: the refusal is remembered
    assert ("apply", "FlinkDeployment", "payments-stream") not in kube.calls and kube.writes() == []
    assert cond(kube, "Ready")["reason"] == "ApplyFailed"
    kube.fail_kinds = set()
    edit(stream__parallelism=3)  # a change of the desired FlinkDeployment: worth another try
    rec.reconcile(KEY)
    assert ("apply", "FlinkDeployment", "payments-stream") in kube.calls
    assert cond(kube, "Ready")["reason"] != "ApplyFailed"


def test_a_hand_edit_of_a_field_we_set_is_put_back_and_others_fields_are_left(world):
    kube, cache, rec, sync, _ = world
    rec.reconcile(KEY)
    sync()
    kube.calls.clear()
    dep = kube.objects[("Deployment", "fraud", "payments-model")]
    dep["spec"]["paused"] = True  # a field we do not set: none of our business
    cache.observe("MODIFIED", kube._bump(dep))
    rec.reconcile(KEY)
    assert kube.writes() == []
    cache.observe("MODIFIED", kube.edit("Deployment", "fraud", "payments-model", ["spec", "revisionHistoryLimit"], 9))
    rec.reconcile(KEY)
    assert kube.writes() == [("apply", "Deployment", "payments-model")]
    assert dep["spec"]["revisionHistoryLimit"] == 3


def test_deletion_releases_topics_then_removes_the_finalizer(world):
    kube, cache, rec, sync, edit = world
    rec.reconcile(KEY)
    sync()
    fp = kube.objects[("FraudPipeline", *KEY)]
    fp["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    cache.observe("MODIFIED", kube._bump(fp))
    kube.calls.clear()
    assert rec.reconcile(KEY) is False
    patches = [c for c in kube.calls if c[0] == "patch" and c[1] == "KafkaTopic"]
    deletes = [c for c in kube.calls if c[0] == "delete"]
    assert len(patches) == 4 and len(deletes) == 4
    assert kube.calls.index(patches[0]) < kube.calls.index(deletes[0])
    assert not any(k[0] == "KafkaTopic" for k in kube.objects)
    # the finalizer goes last, and with it the pipeline
    assert [c for c in kube.calls if c[1] == "FraudPipeline"] == [("patch", "FraudPipeline", "payments")]
    assert ("FraudPipeline", *KEY) not in kube.objects
    assert kube.events[-1]["reason"] == "TopicsReleased"


def test_status_lasttransitiontime_moves_only_on_change(world):
    kube, cache, rec, sync, _ = world
    rec.reconcile(KEY)
    sync()
    first = cond(kube, "TopicsReady")["lastTransitionTime"]
    rec.now = lambda: "2026-02-02T00:00:00Z"
    for obj in list(kube.objects.values()):
        if obj["kind"] == "KafkaTopic":
            obj["status"] = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    sync()
    rec.reconcile(KEY)
    assert cond(kube, "TopicsReady")["lastTransitionTime"] == "2026-02-02T00:00:00Z" != first
    assert cond(kube, "MonitoringReady")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
