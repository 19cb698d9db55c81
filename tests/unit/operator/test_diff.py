"""Deciding whether a child must be applied, from its watched state."""

from __future__ import annotations

from decimal import Decimal

from fp_operator.diff import APPLIED_HASH, needs_apply, quantity, stamp

DESIRED = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "m", "namespace": "ns", "labels": {"a": "1"}},
    "spec": {"template": {"spec": {"containers": [{
        "name": "model", "image": "img:1", "env": [{"name": "X", "value": "1"}],
        "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}}}]}}},
}


def live_from(desired: dict) -> dict:
    """What the API server returns: defaults added, quantities canonical, extra fields."""
    import copy

    live = copy.deepcopy(stamp(desired))
    live["metadata"].update({"uid": "u", "resourceVersion": "7", "generation": 1})
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
    live = live_from(DESIRED)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:2"
    assert needs_apply(stamp(DESIRED), live) == [".spec.template.spec.containers[name=model].image"]


def test_field_we_stopped_setting_is_caught_by_the_hash():
    import copy

    old = copy.deepcopy(DESIRED)
    old["spec"]["replicas"] = 0
    live = live_from(old)
    live["spec"]["replicas"] = 0
    why = needs_apply(stamp(DESIRED), live)
    assert why == [f".metadata.annotations.{APPLIED_HASH}"]


def test_quantities_compare_by_value():
    assert quantity("500m") == Decimal("0.5") and quantity("1Gi") == 2 ** 30 and quantity("1e3") == 1000
    assert quantity("fraud-xgb:1") is None
