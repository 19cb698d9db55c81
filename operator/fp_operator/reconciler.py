"""One idempotent reconcile of one FraudPipeline, and the cleanup when it is deleted.

reconcile(): read the pipeline and its children from the watch cache, build the desired children
(pure builders), refuse what cannot be done (fewer partitions), apply only what differs, remove
children no longer wanted, compute the status from what is observed and write it only when it
changed. Called for every event of the pipeline or of a child, so it is cheap when nothing changed:
no API request at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from fraudpipeline.spec import API_VERSION, KIND, FraudPipeline, SpecError, parse_pipeline
from fp_operator import labels, metrics
from fp_operator.builders import BuildOptions, Capabilities, build_children
from fp_operator.cache import Key, ObjectCache, PipelineKey, _rv
from fp_operator.diff import needs_apply, stamp
from fp_operator.kube import ApiError, Kube
from fp_operator.status import Observation, Reason, compute_status, same_status

log = logging.getLogger("fp_operator.reconcile")
WARNING_PHASES = {"Degraded", "Invalid"}


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: dict) -> Key:
    return ObjectCache.key_of(obj)


class Reconciler:
    def __init__(self, kube: Kube, cache: ObjectCache, options: BuildOptions | None = None, *,
                 discovery_ttl: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], str] = utcnow):
        self.kube, self.cache, self.options = kube, cache, options or BuildOptions()
        self.discovery_ttl, self.clock, self.now = discovery_ttl, clock, now
        self._caps: Capabilities | None = None
        self._caps_at = 0.0
        self._guard = threading.Lock()
        self._locks: dict[PipelineKey, threading.Lock] = {}
        self._written: dict[PipelineKey, tuple[int, dict]] = {}  # our last status write: (resourceVersion, status)
        self._deleting: set[PipelineKey] = set()

    # ------------------------------------------------------------------------------------- helpers

    def capabilities(self, refresh: bool = False) -> Capabilities:
        with self._guard:
            if refresh or self._caps is None or self.clock() - self._caps_at > self.discovery_ttl:
                self._caps, self._caps_at = self.kube.discover(), self.clock()
            return self._caps

    def _lock(self, key: PipelineKey) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _live(self, obj: dict, children: dict[Key, dict]) -> dict | None:
        k = _key(obj)
        return children.get(k) or self.cache.get(*k)

    @staticmethod
    def _is_ours(p: FraudPipeline, obj: dict) -> bool:
        """Only objects we made may be removed: our labels and, when owned, our pipeline's uid."""
        if labels.owner_of(obj["metadata"].get("labels")) != (p.namespace, p.name):
            return False
        if obj["kind"] == "KafkaTopic":
            return True
        return any(ref.get("uid") == p.metadata.uid for ref in obj["metadata"].get("ownerReferences") or [])

    def _remove_child(self, obj: dict, deletion_policy: str) -> None:
        m = obj["metadata"]
        if obj["kind"] == "KafkaTopic" and deletion_policy == "Retain":
            self.release_topic(obj)
        self.kube.delete(obj["apiVersion"], obj["kind"], m["namespace"], m["name"])
        self.cache.forget(_key(obj))

    def release_topic(self, topic: dict) -> None:
        """strimzi.io/managed: "false" first, so deleting the KafkaTopic keeps the Kafka topic."""
        m = topic["metadata"]
        if (m.get("annotations") or {}).get(labels.STRIMZI_MANAGED) == "false":
            return
        try:
            released = self.kube.merge_patch(topic["apiVersion"], "KafkaTopic", m["namespace"], m["name"],
                                             {"metadata": {"annotations": {labels.STRIMZI_MANAGED: "false"}}})
        except ApiError as exc:
            if exc.status == 404:  # already gone (e.g. its namespace was deleted): nothing to release
                return
            raise
        self.cache.put(released)

    @staticmethod
    def _guard_partitions(desired: list[dict], live_of: Callable[[dict], dict | None]) -> list[tuple[str, int, int]]:
        """Kafka cannot remove partitions: keep the live count and report the refusal."""
        refused = []
        for d in desired:
            if d["kind"] != "KafkaTopic":
                continue
            have = ((live_of(d) or {}).get("spec") or {}).get("partitions")
            want = d["spec"].get("partitions")
            if isinstance(have, int) and isinstance(want, int) and want < have:
                d["spec"]["partitions"] = have
                refused.append((d["metadata"]["labels"].get(labels.TOPIC_ROLE, "?"), have, want))
        return refused

    # ----------------------------------------------------------------------------------- reconcile

    def reconcile(self, key: PipelineKey) -> float | None:
        """Bring one pipeline's children and status in line; returns a retry delay or None."""
        with self._lock(key):
            t0 = time.perf_counter()
            try:
                delay, summary = self._reconcile(key)
            except Exception:
                metrics.RECONCILES.labels(result="error").inc()
                raise
            finally:
                metrics.RECONCILE_SECONDS.observe(time.perf_counter() - t0)
            if summary:
                metrics.RECONCILES.labels(result="retry" if delay else "ok").inc()
                log.info("reconciled %s/%s %s in %.0f ms", key[0], key[1], summary, (time.perf_counter() - t0) * 1000)
            return delay

    def _reconcile(self, key: PipelineKey) -> tuple[float | None, str | None]:
        body = self.cache.pipeline(key)
        if body is None or body["metadata"].get("deletionTimestamp") or key in self._deleting:
            return None, None
        try:
            p = parse_pipeline(body, source=f"FraudPipeline {key[0]}/{key[1]}")
        except SpecError as exc:
            return self._invalid(key, body, str(exc))
        caps = self.capabilities()
        desired = build_children(p, caps, self.options)
        children = self.cache.children(key)
        refused = self._guard_partitions(desired, lambda d: self._live(d, children))

        applied, errors = 0, []
        for obj in desired:
            stamped = stamp(obj)
            if not needs_apply(stamped, self._live(obj, children)):
                continue
            try:
                self.cache.put(self.kube.apply(stamped))
                applied += 1
                metrics.APPLIES.labels(kind=obj["kind"]).inc()
            except ApiError as exc:
                if exc.namespace_terminating:
                    return None, f"skipped: namespace {obj['metadata']['namespace']} is being deleted"
                errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
                if exc.status == 404:  # a CRD went away: look again next time
                    self._caps = None

        wanted = {_key(d) for d in desired}
        pruned = 0
        for k, obj in children.items():
            if k in wanted or not self._is_ours(p, obj):
                continue
            try:
                self._remove_child(obj, p.spec.kafka.deletion_policy)
                pruned += 1
            except ApiError as exc:
                errors.append(f"removing {obj['kind']}/{obj['metadata']['name']}: {exc.message}")

        live = {**children, **{k: v for k in wanted if (v := self.cache.get(*k)) is not None}}
        obs = Observation(desired=desired, live=live, caps=caps, refused_partitions=refused, apply_errors=errors)
        previous = self._previous_status(key, body)
        status = compute_status(p, obs, previous, self.now())
        wrote = self._write_status(key, body, previous, status)
        summary = (f"gen={p.metadata.generation} phase={status['phase']} applied={applied} pruned={pruned} "
                   f"unchanged={len(desired) - applied} status={'written' if wrote else 'unchanged'}"
                   + (f" errors={len(errors)}" if errors else ""))
        return (5.0 if errors else None), summary

    def _previous_status(self, key: PipelineKey, body: dict) -> dict:
        """The cache may not show our last status write yet; then that write is the truth."""
        written = self._written.get(key)
        if written and _rv(body) < written[0]:
            return written[1]
        return body.get("status") or {}

    def _write_status(self, key: PipelineKey, body: dict, previous: dict, status: dict) -> bool:
        if same_status(previous, status):
            return False
        m = body["metadata"]
        result = self.kube.patch_status(API_VERSION, KIND, m["namespace"], m["name"], status, previous)
        self._written[key] = (_rv(result or {}), status)
        if result:
            self.cache.put(result)
        self._post_transition(body, previous, status)
        return True

    def _post_transition(self, body: dict, previous: dict, status: dict) -> None:
        """Events for changes only: a new phase, or a new reason why the pipeline is not Ready."""
        def ready(s: dict) -> dict:
            return next((c for c in s.get("conditions") or [] if c.get("type") == "Ready"), {})

        before, after = ready(previous), ready(status)
        if previous.get("phase") == status["phase"] and before.get("reason") == after.get("reason"):
            return
        reason = after.get("reason", "Unknown")
        message = f"phase {previous.get('phase') or '-'} -> {status['phase']}: {after.get('message', '')}"
        try:
            self.kube.post_event(body, reason=reason, message=message, warning=status["phase"] in WARNING_PHASES)
        except ApiError as exc:  # events are best effort; the status already says it
            log.warning("could not post event on %s/%s: %s", body["metadata"]["namespace"],
                        body["metadata"]["name"], exc)

    def _invalid(self, key: PipelineKey, body: dict, message: str) -> tuple[None, str]:
        """A spec the API server let through but we cannot use (e.g. an older CRD is installed)."""
        previous = self._previous_status(key, body)
        now = self.now()
        old = next((c for c in previous.get("conditions") or [] if c.get("type") == "Ready"), {})
        cond = {"type": "Ready", "status": "False", "reason": Reason.INVALID_SPEC.value, "message": message[:2000],
                "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == "False" else now,
                "observedGeneration": body["metadata"].get("generation")}
        status = {"observedGeneration": body["metadata"].get("generation"), "phase": "Invalid", "conditions": [cond]}
        wrote = self._write_status(key, body, previous, status)
        return None, f"phase=Invalid status={'written' if wrote else 'unchanged'}: {message.splitlines()[0]}"

    # ------------------------------------------------------------------------------------ deletion

    def cleanup(self, body: dict) -> list[str]:
        """The finalizer's work: the pipeline's topics, released (Retain) or not, are deleted.
        Same-namespace children are owned and left to the garbage collector. Returns what was done."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._guard:
            self._deleting.add(key)
        with self._lock(key):
            try:
                p = parse_pipeline(body)
                policy = p.spec.kafka.deletion_policy
                caps = self.capabilities()
                expected = [d for d in build_children(p, caps, self.options) if d["kind"] == "KafkaTopic"]
            except SpecError:
                policy, expected = "Retain", []  # when in doubt, keep the data
            topics = {k: v for k, v in self.cache.children(key).items() if k[0] == "KafkaTopic"}
            for d in expected:  # not yet seen by the watch: ask the API server
                k = _key(d)
                if k not in topics and (live := self.kube.get(d["apiVersion"], "KafkaTopic", k[1], k[2])):
                    topics[k] = live
            done = []
            for k, topic in sorted(topics.items()):
                self._remove_child(topic, policy)
                done.append(f"{'released and deleted' if policy == 'Retain' else 'deleted'} KafkaTopic {k[1]}/{k[2]}")
            with self._guard:
                self._written.pop(key, None)
            if done:
                try:
                    self.kube.post_event(body, reason="TopicsReleased" if policy == "Retain" else "TopicsDeleted",
                                         message="; ".join(done))
                except ApiError:
                    pass
            return done

    def forget(self, key: PipelineKey) -> None:
        with self._guard:
            self._deleting.discard(key)
            self._written.pop(key, None)
            self._locks.pop(key, None)

