"""Deciding whether a child must be applied, from its watched state: our applied-hash annotation and
our field manager's managedFields (shaped as the API server writes them)."""

from __future__ import annotations

import copy

from fp_operator.diff import needs_apply, stamp, unowned
from fp_operator.labels import APPLIED_HASH, FIELD_MANAGER

DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "1"}},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "model",
                        "image": "img:1",
                        "args": ["--x", "1"],
                        "ports": [{"name": "http", "containerPort": 3000, "protocol": "TCP"}],
                        "env": [{"name": "X", "value": "1"}],
                        "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}},
                        "securityContext": {"capabilities": {"drop": ["ALL"]}},
                    }
                ]
            }
        }
    },
}

# What kube-apiserver records for an apply of DESIRED (stamped) by our manager.
OURS = {
    "f:metadata": {"f:annotations": {f"f:{APPLIED_HASH}": {}}, "f:labels": {"f:a": {}}},
    "f:spec": {
        "f:template": {
            "f:spec": {
                "f:containers": {
                    'k:{"name":"model"}': {
                        ".": {},
                        "f:name": {},
                        "f:image": {},
                        "f:args": {},
                        "f:ports": {
                            'k:{"containerPort":3000,"protocol":"TCP"}': {
                                ".": {},
                                "f:name": {},
                                "f:containerPort": {},
                                "f:protocol": {},
                            }
                        },
                        "f:env": {'k:{"name":"X"}': {".": {}, "f:name": {}, "f:value": {}}},
                        "f:resources": {"f:requests": {"f:cpu": {}, "f:memory": {}}},
                        "f:securityContext": {"f:capabilities": {"f:drop": {}}},
                    }
                }
            }
        }
    },
}


def live_from(desired: dict, fields: dict | None = None) -> dict:
    """What the API server returns: defaults added, quantities canonical, other managers' entries."""
    live = copy.deepcopy(stamp(desired))
    live["metadata"].update(
        {
            "uid": "u",
            "resourceVersion": "7",
            "generation": 1,
            "managedFields": [
                {
                    "manager": FIELD_MANAGER,
                    "operation": "Apply",
                    "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": copy.deepcopy(OURS if fields is None else fields),
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {"f:replicas": {}}},
                },
            ],
        }
    )
    c = live["spec"]["template"]["spec"]["containers"][0]
    c.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    c["resources"]["requests"] = {"cpu": "500m", "memory": "1Gi"}
    live["spec"]["replicas"] = 3  # owned by the HPA
    live["status"] = {"replicas": 3}
    return live


def test_applied_object_with_server_defaults_is_up_to_date():
    assert needs_apply(stamp(DESIRED), live_from(DESIRED)) == []


def test_missing_object_needs_apply():
    assert needs_apply(stamp(DESIRED), None) == ["missing"]


def test_hand_edit_of_a_field_we_set_is_drift():
    """Another manager changed the image: server-side apply moved that field out of our entry."""
    fields = copy.deepcopy(OURS)
    del fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"model"}']["f:image"]
    live = live_from(DESIRED, fields)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:2"
    assert needs_apply(stamp(DESIRED), live) == [".spec.template.spec.containers[0].image"]


def test_removed_list_item_and_label_are_drift():
    fields = copy.deepcopy(OURS)
    # Our only env item and our only label went: the entry keeps no `f:env` and no `f:labels` at all
    # (it is a set of owned paths; as seen on kube-apiserver 1.36).
    del fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"model"}']["f:env"]
    del fields["f:metadata"]["f:labels"]
    assert needs_apply(stamp(DESIRED), live_from(DESIRED, fields)) == [
        ".metadata.labels",
        ".spec.template.spec.containers[0].env",
    ]


def test_atomic_lists_maps_and_sets_are_read_from_the_entry():
    assert unowned({"args": ["a", "b"]}, {"f:args": {}}) == []  # atomic: owned as a whole
    assert unowned({"selector": {"a": "1"}}, {"f:selector": {}}) == []
    owner = {"uid": "u", "kind": "FraudPipeline", "controller": True}
    assert unowned({"ownerReferences": [owner]}, {"f:ownerReferences": {'k:{"uid":"u"}': {}}}) == []
    assert unowned({"ownerReferences": [owner]}, {"f:ownerReferences": {'k:{"uid":"v"}': {}}}) == [
        ".ownerReferences[0]"
    ]
    assert unowned({"finalizers": ["x", "y"]}, {"f:finalizers": {'v:"x"': {}}}) == [".finalizers[1]"]


def test_a_key_field_the_server_defaulted_still_matches():
    fields = {"f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}
    assert unowned({"ports": [{"containerPort": 80}]}, fields) == []


def test_field_we_stopped_setting_is_caught_by_the_hash():
    old = copy.deepcopy(DESIRED)
    old["spec"]["replicas"] = 0
    live = live_from(old)
    live["spec"]["replicas"] = 0
    assert needs_apply(stamp(DESIRED), live) == [f".metadata.annotations.{APPLIED_HASH}"]


def test_an_object_we_never_applied_is_applied():
    live = live_from(DESIRED)
    live["metadata"]["managedFields"] = [f for f in live["metadata"]["managedFields"] if f["manager"] != FIELD_MANAGER]
    assert needs_apply(stamp(DESIRED), live) == ["not applied by us"]
