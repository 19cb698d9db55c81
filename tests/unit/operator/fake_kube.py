"""An in-memory stand-in for our own apply layer (fp_operator.kube.Kube), for reconciler logic tests.

It is not a fake API server: the integration tests run the real one. It stores what is applied,
bumps resourceVersions and records every call, so tests can count writes.
"""

from __future__ import annotations

import copy
import itertools

from fp_operator.builders import Capabilities
from fp_operator.kube import ApiError


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
            raise ApiError(422, f"{obj['kind']} refused by the test")
        if k in self.objects:
            stored = self.objects[k]
            before = copy.deepcopy(stored.get("spec"))
            _merge(stored, copy.deepcopy(obj))
            if stored.get("spec") != before:
                stored["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
        else:
            self.objects[k] = copy.deepcopy(obj)
            self.objects[k]["metadata"]["generation"] = 1
        return self._bump(self.objects[k])

    def merge_patch(self, api_version, kind, namespace, name, patch, subresource=None):
        self.calls.append(("patch", kind, name))
        return self._bump(_merge(self.objects[(kind, namespace, name)], patch))

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

    def post_event(self, involved, *, reason, message, warning=False):
        self.calls.append(("event", reason, involved["metadata"]["name"]))
        self.events.append({"reason": reason, "message": message, "warning": warning})

    def discover(self):
        self.calls.append(("discovery", "", ""))
        return self.caps

    def writes(self) -> list[tuple[str, str, str]]:
        return [c for c in self.calls if c[0] in ("apply", "patch", "status", "delete", "event")]
