"""What the watches saw: the latest FraudPipelines and children, kept from kopf's watch events.

Reconciles read the live state from here instead of GETting it, so a steady state costs no API
requests. Objects are indexed by the pipeline they belong to (from their labels). Stored objects
are never changed, only replaced, so they are handed out without copying: callers only read them.

Ordering. resourceVersions are opaque: they are only ever compared for equality. A watch stream
delivers each object's changes in order, so its newest event is the truth, with one exception:
our own writes. The response of a write is stored at once (so the next reconcile does not write
it again) and the object is marked as waiting for the watch to deliver that very
resourceVersion; events before it (which our write already includes) are skipped, events from
it on are taken. The stream may also have delivered it already (the watch can beat the response
to a worker thread): the last few versions the stream delivered are remembered for that. Should
the stream never deliver it (a watch restarted with a fresh list after a gap), the mark expires
after `settle_seconds` and the stream is trusted again.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from fp_operator.labels import FIELD_MANAGER, owner_of

Key = tuple[str, str, str]  # (kind, namespace, name)
PipelineKey = tuple[str, str]  # (namespace, name)


def resource_version(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion")


def _uid(obj: dict | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("uid")


def _strip(obj: dict) -> dict:
    """Without what we never read: other managers' managedFields (ours tell drift, diff.py). A
    shallow copy: nested parts are shared with `obj`, which nobody changes afterwards."""
    out = dict(obj)
    meta = out["metadata"] = dict(out.get("metadata") or {})
    if "managedFields" in meta:
        ours = [f for f in meta["managedFields"] if f.get("manager") == FIELD_MANAGER and f.get("operation") == "Apply"]
        if ours:
            meta["managedFields"] = ours
        else:
            del meta["managedFields"]
    return out


class ObjectCache:
    def __init__(self, settle_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, dict] = {}
        self._by_pipeline: dict[PipelineKey, set[Key]] = defaultdict(set)
        self._owners: dict[Key, PipelineKey] = {}  # the reverse of _by_pipeline
        self._awaiting: dict[Key, tuple[str, float]] = {}  # our write's resourceVersion, and when
        self._delivered: dict[Key, deque[str | None]] = {}  # the stream's last few versions of each object
        self.settle_seconds, self._clock = settle_seconds, clock

    @staticmethod
    def key_of(obj: dict) -> Key:
        m = obj["metadata"]
        return obj["kind"], m.get("namespace") or "", m["name"]

    @staticmethod
    def _owner(key: Key, obj: dict) -> PipelineKey | None:
        return (key[1], key[2]) if key[0] == "FraudPipeline" else owner_of(obj["metadata"].get("labels"))

    def _index(self, key: Key, owner: PipelineKey | None) -> PipelineKey | None:
        """File `key` under `owner`; returns the pipeline it was filed under before."""
        before = self._owners.pop(key, None)
        if before is not None:
            self._by_pipeline[before].discard(key)
            if not self._by_pipeline[before]:
                del self._by_pipeline[before]
        if owner is not None and key[0] != "FraudPipeline":
            self._owners[key] = owner
            self._by_pipeline[owner].add(key)
        return before

    def _store(self, key: Key, obj: dict, owner: PipelineKey | None) -> PipelineKey | None:
        self._objects[key] = _strip(obj)
        return self._index(key, owner)

    def _drop(self, key: Key) -> PipelineKey | None:
        self._objects.pop(key, None)
        self._awaiting.pop(key, None)
        self._delivered.pop(key, None)
        return self._index(key, None)

    def _behind_our_write(self, key: Key, obj: dict) -> bool:
        """True while the stream has not yet delivered our last write of `key` (see the module doc)."""
        awaited = self._awaiting.get(key)
        if awaited is None:
            return False
        if resource_version(obj) == awaited[0] or self._clock() - awaited[1] > self.settle_seconds:
            del self._awaiting[key]
            return False
        return True

    def observe(self, event_type: str | None, obj: dict) -> list[PipelineKey]:
        """A watch event (None: from a listing); returns the pipelines the object belongs or
        belonged to (a hand edit of its labels moves it: its pipeline must hear of that too)."""
        key = self.key_of(obj)
        owner = self._owner(key, obj)
        before = None
        with self._lock:
            self._delivered.setdefault(key, deque(maxlen=8)).append(resource_version(obj))
            if self._behind_our_write(key, obj):
                return [owner] if owner else []
            if event_type == "DELETED":
                known = self._objects.get(key)
                # a deleted earlier incarnation (another uid) must not remove the current one
                if known is not None and _uid(known) in (None, _uid(obj)):
                    before = self._drop(key)
            else:
                before = self._store(key, obj, owner)
        return [o for o in dict.fromkeys((owner, before)) if o is not None]

    def wrote(self, obj: dict | None) -> None:
        """The response of our own write: the newest state, until the watch delivers it."""
        if not obj:
            return
        key = self.key_of(obj)
        rv = resource_version(obj)
        with self._lock:
            if rv in self._delivered.get(key, ()):
                return  # the stream delivered it already: what we hold is as new or newer
            self._awaiting[key] = (rv, self._clock())
            self._store(key, obj, self._owner(key, obj))

    def forget(self, key: Key) -> None:
        """Drop an object we deleted ourselves (its DELETED event may come later)."""
        with self._lock:
            self._drop(key)

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        """The stored object itself (no copy: it is read, never changed; a new event replaces it)."""
        with self._lock:
            return self._objects.get((kind, namespace, name))

    def pipeline(self, key: PipelineKey) -> dict | None:
        return self.get("FraudPipeline", *key)

    def pipelines(self) -> list[PipelineKey]:
        with self._lock:
            return [(ns, name) for kind, ns, name in self._objects if kind == "FraudPipeline"]

    def children(self, key: PipelineKey) -> dict[Key, dict]:
        with self._lock:
            return {k: self._objects[k] for k in self._by_pipeline.get(key, ()) if k in self._objects}
