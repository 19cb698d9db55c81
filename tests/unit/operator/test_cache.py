"""The watch cache orders by the stream, never by parsing resourceVersions (opaque strings here)."""

from __future__ import annotations

from fp_operator.cache import ObjectCache
from fp_operator.labels import FIELD_MANAGER, MANAGED_BY, PIPELINE, PIPELINE_NAMESPACE


def svc(rv: str, uid: str = "u1", pipeline: str = "p", port: int = 80) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "s",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": rv,
            "labels": {MANAGED_BY: FIELD_MANAGER, PIPELINE: pipeline, PIPELINE_NAMESPACE: "ns"},
        },
        "spec": {"ports": [{"port": port}]},
    }


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def port(cache: ObjectCache) -> int:
    return cache.get("Service", "ns", "s")["spec"]["ports"][0]["port"]


def test_events_older_than_our_write_are_skipped_until_the_stream_delivers_it():
    cache = ObjectCache()
    cache.observe("ADDED", svc("b7", port=80))
    cache.wrote(svc("zz", port=81))  # versions are not ordered: "zz" vs "b8" says nothing
    cache.observe("MODIFIED", svc("b8", port=79))  # before our write in the stream: already in it
    assert port(cache) == 81
    cache.observe("MODIFIED", svc("zz", port=81))  # our write: from here on the stream is the truth
    cache.observe("MODIFIED", svc("a1", port=82))
    assert port(cache) == 82


def test_a_write_the_stream_delivered_first_does_not_hold_the_cache_back():
    cache = ObjectCache()
    cache.observe("ADDED", svc("r1", port=80))  # our create, seen by the watch before the response
    cache.observe("MODIFIED", svc("r2", port=80))  # then another controller's change
    cache.wrote(svc("r1", port=80))  # the worker thread gets the response late
    assert cache.get("Service", "ns", "s")["metadata"]["resourceVersion"] == "r2"
    cache.observe("MODIFIED", svc("r3", port=83))
    assert port(cache) == 83


def test_a_write_the_stream_never_delivers_stops_holding_after_a_while():
    clock = Clock()
    cache = ObjectCache(settle_seconds=10, clock=clock)
    cache.wrote(svc("mine", port=81))
    cache.observe(None, svc("listed", port=84))  # a relisting after a gap, past our write
    assert port(cache) == 81
    clock.t = 11
    cache.observe("MODIFIED", svc("later", port=85))
    assert port(cache) == 85


def test_deleting_an_earlier_incarnation_keeps_the_current_one():
    cache = ObjectCache()
    cache.observe("ADDED", svc("2", uid="new"))
    cache.observe("DELETED", svc("1", uid="old"))
    assert cache.get("Service", "ns", "s") is not None
    assert cache.observe("DELETED", svc("3", uid="new")) == [("ns", "p")]
    assert cache.get("Service", "ns", "s") is None


def test_a_child_relabelled_by_hand_tells_both_pipelines():
    cache = ObjectCache()
    cache.observe("ADDED", svc("1", pipeline="p"))
    assert cache.observe("MODIFIED", svc("2", pipeline="other")) == [("ns", "other"), ("ns", "p")]
    assert cache.children(("ns", "p")) == {} and list(cache.children(("ns", "other"))) == [("Service", "ns", "s")]


def test_only_our_managed_fields_are_kept():
    obj = svc("1")
    obj["metadata"]["managedFields"] = [
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {}}},
        {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:x": {}}},
    ]
    cache = ObjectCache()
    cache.observe("ADDED", obj)
    assert [f["manager"] for f in cache.get("Service", "ns", "s")["metadata"]["managedFields"]] == [FIELD_MANAGER]
