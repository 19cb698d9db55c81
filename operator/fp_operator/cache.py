"""What the watches saw: the latest FraudPipelines and children, kept by kopf's event handlers.

Reconciles read the live state from here instead of GETting it, so a steady state costs no API
requests. Objects are indexed by the pipeline they belong to (from their labels). An older
resourceVersion never overwrites a newer one, so our own apply results (stored at once) are not
undone by a late watch event.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict

from fp_operator.labels import owner_of

Key = tuple[str, str, str]  # (kind, namespace, name)
PipelineKey = tuple[str, str]  # (namespace, name)


def _rv(obj: dict) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:  # resourceVersions are opaque; etcd's are integers
        return 0


def _strip(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    (out.get("metadata") or {}).pop("managedFields", None)
    return out


class ObjectCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, dict] = {}
        self._by_pipeline: dict[PipelineKey, set[Key]] = defaultdict(set)

    @staticmethod
    def key_of(obj: dict) -> Key:
        m = obj["metadata"]
        return obj["kind"], m.get("namespace") or "", m["name"]

    def put(self, obj: dict) -> PipelineKey | None:
        """Store `obj` unless a newer version is known; returns the pipeline it belongs to."""
        key = self.key_of(obj)
        owner = (key[1], key[2]) if key[0] == "FraudPipeline" else owner_of(obj["metadata"].get("labels"))
        with self._lock:
            known = self._objects.get(key)
            if known is None or _rv(obj) >= _rv(known):
                self._objects[key] = _strip(obj)
                if owner and key[0] != "FraudPipeline":
                    self._by_pipeline[owner].add(key)
        return owner

    def remove(self, obj: dict) -> PipelineKey | None:
        key = self.key_of(obj)
        owner = (key[1], key[2]) if key[0] == "FraudPipeline" else owner_of(obj["metadata"].get("labels"))
        with self._lock:
            known = self._objects.get(key)
            if known is not None and _rv(obj) >= _rv(known):
                del self._objects[key]
                for keys in self._by_pipeline.values():
                    keys.discard(key)
        return owner

    def forget(self, key: Key) -> None:
        """Drop an object we deleted ourselves (its DELETED event may come later)."""
        with self._lock:
            self._objects.pop(key, None)
            for keys in self._by_pipeline.values():
                keys.discard(key)

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        with self._lock:
            obj = self._objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def pipeline(self, key: PipelineKey) -> dict | None:
        return self.get("FraudPipeline", *key)

    def pipelines(self) -> list[PipelineKey]:
        with self._lock:
            return [(ns, name) for kind, ns, name in self._objects if kind == "FraudPipeline"]

    def children(self, key: PipelineKey) -> dict[Key, dict]:
        with self._lock:
            return {k: copy.deepcopy(self._objects[k]) for k in self._by_pipeline.get(key, ()) if k in self._objects}
