"""An in-memory stand-in for our own apply layer (fp_operator.kube.Kube), for reconciler logic tests.

It is not a fake API server: the integration tests run the real one. It stores what is applied,
bumps resourceVersions, records our field manager's fields (a simplified managedFields: lists of
named items are keyed by name, other lists atomic) and every call, so tests can count writes.
"""

from __future__ import annotations

import copy
import itertools
import json

from fp_operator.builders import Capabilities
from fp_operator.kube import ApiError
from fp_operator.labels import FIELD_MANAGER


def fields_of(obj) -> dict:
    """fieldsV1 of what an apply of `obj` sets (enough of server-side apply's rules for these tests)."""
    if isinstance(obj, dict):
        return {f"f:{k}": fields_of(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list) and obj and all(isinstance(i, dict) and "name" in i for i in obj):
        return {f"k:{json.dumps({'name': i['name']}, separators=(',', ':'))}": {".": {}, **fields_of(i)} for i in obj}
    return {}


def managed(obj: dict) -> list[dict]:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in ("name", "namespace", "managedFields")}
    return [
        {
            "manager": FIELD_MANAGER,
            "operation": "Apply",
            "apiVersion": obj["apiVersion"],
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_of(body),
        }
    ]


def _merge(into: dict, patch: dict) -> dict:
    for k, v in patch.items():
        if v is None:
            into.pop(k, None)
        elif isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)
    return into


class FakeKube:
    def __init__(self, caps: Capabilities | None = None):
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.events: list[dict] = []
        self.caps = caps or Capabilities()
        self._rv = itertools.count(100)
        self.fail_kinds: set[str] = set()
        self.fail_status = 422  # what fail_kinds get: 422 is permanent, 500 or 409 transient

    def _bump(self, obj: dict) -> dict:
        obj["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(obj)

    def add(self, obj: dict) -> dict:
        k = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.objects[k] = copy.deepcopy(obj)
        self.objects[k]["metadata"].setdefault("generation", 1)
        return self._bump(self.objects[k])

    def apply(self, obj: dict) -> dict:
        k = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.calls.append(("apply",) + k[:1] + (k[2],))
        if obj["kind"] in self.fail_kinds:
            raise ApiError(self.fail_status, f"{obj['kind']} refused by the test")
        if k in self.objects:
            stored = self.objects[k]
            before = copy.deepcopy(stored.get("spec"))
            _merge(stored, copy.deepcopy(obj))
            if stored.get("spec") != before:
                stored["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
        else:
            self.objects[k] = copy.deepcopy(obj)
            self.objects[k]["metadata"]["generation"] = 1
        self.objects[k]["metadata"]["managedFields"] = managed(obj)
        return self._bump(self.objects[k])

    def edit(self, kind: str, namespace: str, name: str, path: list[str], value) -> dict:
        """A hand edit by another manager: the field leaves our managed fields."""
        obj = self.objects[(kind, namespace, name)]
        node, fields = obj, obj["metadata"]["managedFields"][0]["fieldsV1"]
        for key in path[:-1]:
            node, fields = node[key], fields.get(f"f:{key}", {})
        node[path[-1]] = value
        fields.pop(f"f:{path[-1]}", None)
        return self._bump(obj)

    def merge_patch(self, api_version, kind, namespace, name, patch, subresource=None):
        self.calls.append(("patch", kind, name))
        obj = self.objects[(kind, namespace, name)]
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected is not None and expected != obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "the object has been modified; please apply your changes to the latest version")
        patch = copy.deepcopy(patch)
        (patch.get("metadata") or {}).pop("resourceVersion", None)
        _merge(obj, patch)
        if obj["metadata"].get("deletionTimestamp") and not obj["metadata"].get("finalizers"):
            self.objects.pop((kind, namespace, name))  # the last finalizer went: the API server deletes it
        return self._bump(obj)

    def patch_status(self, api_version, kind, namespace, name, status, previous):
        self.calls.append(("status", kind, name))
        obj = self.objects[(kind, namespace, name)]
        obj["status"] = copy.deepcopy(status)
        return self._bump(obj)

    def delete(self, api_version, kind, namespace, name):
        self.calls.append(("delete", kind, name))
        return self.objects.pop((kind, namespace, name), None) is not None

    def get(self, api_version, kind, namespace, name):
        self.calls.append(("get", kind, name))
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def post_event(self, regarding, *, reason, note, action, warning=False):
        self.calls.append(("event", reason, regarding["metadata"]["name"]))
        self.events.append({"reason": reason, "note": note, "action": action, "warning": warning})

    def discover(self):
        self.calls.append(("discovery", "", ""))
        return self.caps

    def writes(self) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] in ("apply", "patch", "status", "delete", "event")]
