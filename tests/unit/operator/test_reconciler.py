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
    cache.put(kube.add(doc))
    rec = Reconciler(kube, cache, now=lambda: "2026-01-01T00:00:00Z")

    def sync():
        """What the watches would deliver: every stored object into the cache."""
        for obj in kube.objects.values():
            cache.put(copy.deepcopy(obj))

    def edit(**spec):
        obj = kube.objects[("FraudPipeline", *KEY)]
        for dotted, value in spec.items():
            node = obj["spec"]
            *parents, leaf = dotted.split("__")
            for k in parents:
                node = node.setdefault(k, {})
            node[leaf] = value
        obj["metadata"]["generation"] += 1
        cache.put(kube._bump(obj))

    return kube, cache, rec, sync, edit


def status(kube):
    return kube.objects[("FraudPipeline", *KEY)]["status"]


def cond(kube, ctype):
    return next(c for c in status(kube)["conditions"] if c["type"] == ctype)


def test_first_reconcile_creates_children_then_nothing_more(world):
    kube, cache, rec, sync, _ = world
    rec.reconcile(KEY)
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
    cache.put(kube.add(foreign))
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
    cache.put(kube._bump(kube.objects[("FraudPipeline", *KEY)]))
    kube.calls.clear()
    rec.reconcile(KEY)
    topic_calls = [c for c in kube.calls if c[1] == "KafkaTopic"]
    assert topic_calls == [("patch", "KafkaTopic", "fraud.payments.scores"),
                           ("delete", "KafkaTopic", "fraud.payments.scores")]


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


def test_apply_errors_become_a_condition_and_a_retry(world):
    kube, cache, rec, sync, _ = world
    kube.fail_kinds = {"FlinkDeployment"}
    delay = rec.reconcile(KEY)
    assert delay and status(kube)["phase"] == "Degraded"
    c = cond(kube, "Ready")
    assert c["reason"] == "ApplyFailed" and "FlinkDeployment/payments-stream" in c["message"]


def test_cleanup_releases_topics_with_retain_and_deletes_with_delete(world):
    kube, cache, rec, sync, edit = world
    rec.reconcile(KEY)
    sync()
    body = copy.deepcopy(kube.objects[("FraudPipeline", *KEY)])
    kube.calls.clear()
    done = rec.cleanup(body)
    assert len(done) == 4 and all("released" in d for d in done)
    patches = [c for c in kube.calls if c[0] == "patch"]
    deletes = [c for c in kube.calls if c[0] == "delete"]
    assert len(patches) == 4 and len(deletes) == 4
    assert kube.calls.index(patches[0]) < kube.calls.index(deletes[0])
    assert not any(k[0] == "KafkaTopic" for k in kube.objects)


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

