"""One idempotent reconcile of one FraudPipeline, its finalizer included.

reconcile(): read the pipeline and its children from the watch cache, build the desired children
(pure builders), refuse what cannot be done (fewer partitions), apply only what differs, remove
children no longer wanted, compute the status from what is observed and write it only when it
changed. Called for every event of the pipeline or of a child, so it is cheap when nothing changed:
no API request at all. A pipeline being deleted gets its topics released or deleted, then our
finalizer removed.

Errors by retryability (kube.ApiError.retryable): a transient failure makes reconcile() return
True, and the runtime retries the pipeline after a per-pipeline backoff; a permanent one (the
API server or an admission webhook refused a child) goes into the Ready condition with the API
server's message and is not retried until the desired child or the live one changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from fp_operator import labels, metrics
from fp_operator.builders import BuildOptions, Capabilities, build_children
from fp_operator.cache import Key, ObjectCache, PipelineKey, resource_version
from fp_operator.diff import desired_hash, needs_apply, stamp
from fp_operator.kinds import PIPELINE
from fp_operator.kube import ApiError, Kube
from fp_operator.status import Observation, Reason, compute_status, same_status
from fraudpipeline.spec import FraudPipeline, SpecError, parse_pipeline

log = logging.getLogger("fp_operator.reconcile")
WARNING_PHASES = {"Degraded", "Invalid"}


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(obj: dict) -> Key:
    return ObjectCache.key_of(obj)


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        cache: ObjectCache,
        options: BuildOptions | None = None,
        *,
        discovery_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = utcnow,
    ):
        self.kube, self.cache, self.options = kube, cache, options or BuildOptions()
        self.discovery_ttl, self.clock, self.now = discovery_ttl, clock, now
        self._caps: Capabilities | None = None
        self._caps_at = 0.0
        # Discovery is a request: only worker threads wait on this lock, never kopf's event loop.
        self._discovery = threading.Lock()
        # Children the API server refused for good, by pipeline: child key -> (desired hash, live
        # resourceVersion, message). `_guard` is held for dict operations only (the event loop takes it).
        self._refused: dict[PipelineKey, dict[Key, tuple[str, str | None, str]]] = {}
        self._guard = threading.Lock()

    # ------------------------------------------------------------------------------------- helpers

    def capabilities(self, refresh: bool = False) -> Capabilities:
        with self._discovery:
            if refresh or self._caps is None or self.clock() - self._caps_at > self.discovery_ttl:
                self._caps, self._caps_at = self.kube.discover(), self.clock()
            return self._caps

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
            released = self.kube.merge_patch(
                topic["apiVersion"],
                "KafkaTopic",
                m["namespace"],
                m["name"],
                {"metadata": {"annotations": {labels.STRIMZI_MANAGED: "false"}}},
            )
        except ApiError as exc:
            if exc.status == 404:  # already gone (e.g. its namespace was deleted): nothing to release
                return
            raise
        self.cache.wrote(released)

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

    def _set_finalizers(self, body: dict, finalizers: list[str]) -> dict:
        """Our finalizer on or off, refused (409, retried) if the pipeline changed meanwhile: a merge
        patch replaces the whole list, so it must not race with another writer's finalizer."""
        m = body["metadata"]
        result = self.kube.merge_patch(
            body.get("apiVersion", PIPELINE.api_version()),
            PIPELINE.kind,
            m["namespace"],
            m["name"],
            {"metadata": {"finalizers": finalizers or None, "resourceVersion": m["resourceVersion"]}},
        )
        self.cache.wrote(result)
        return result

    def _event(self, body: dict, reason: str, note: str, action: str, warning: bool = False) -> None:
        """The one place events are posted (best effort: the status already says it)."""
        try:
            self.kube.post_event(body, reason=reason, note=note, action=action, warning=warning)
        except ApiError as exc:
            log.warning(
                "could not post event on %s/%s: %s", body["metadata"]["namespace"], body["metadata"]["name"], exc
            )

    # ----------------------------------------------------------------------------------- reconcile

    def reconcile(self, key: PipelineKey) -> bool:
        """Bring one pipeline's children and status in line; True: a transient error, retry later.
        An ApiError it raises (status write, finalizer) is classified by the caller the same way."""
        t0 = time.perf_counter()
        try:
            retry, summary = self._reconcile(key)
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - t0)
        if summary:
            metrics.RECONCILES.labels(result="retry" if retry else "ok").inc()
            log.info("reconciled %s/%s %s in %.0f ms", key[0], key[1], summary, (time.perf_counter() - t0) * 1000)
        return retry

    def _reconcile(self, key: PipelineKey) -> tuple[bool, str | None]:
        body = self.cache.pipeline(key)
        if body is None:
            return False, None
        finalizers = body["metadata"].get("finalizers") or []
        if body["metadata"].get("deletionTimestamp"):
            return self._finalize(key, body) if labels.FINALIZER in finalizers else (False, None)
        if labels.FINALIZER not in finalizers:
            # Before any child exists, so that deleting the pipeline always waits for its topics.
            body = self._set_finalizers(body, [*finalizers, labels.FINALIZER])
        try:
            p = parse_pipeline(body, source=f"FraudPipeline {key[0]}/{key[1]}")
        except SpecError as exc:
            return self._invalid(body, str(exc))
        caps = self.capabilities()
        desired = build_children(p, caps, self.options)
        children = self.cache.children(key)
        refused = self._guard_partitions(desired, lambda d: self._live(d, children))

        applied, errors, retry = 0, [], False
        for obj in desired:
            stamped = stamp(obj)
            live = self._live(obj, children)
            if not needs_apply(stamped, live):
                continue
            k = _key(obj)
            attempt = (desired_hash(obj), resource_version(live))
            with self._guard:
                known = self._refused.get(key, {}).get(k)
            if known is not None and known[:2] == attempt:
                errors.append(known[2])  # refused before, and nothing changed since
                continue
            try:
                self.cache.wrote(self.kube.apply(stamped))
                applied += 1
                metrics.APPLIES.labels(kind=obj["kind"]).inc()
                with self._guard:
                    self._refused.get(key, {}).pop(k, None)
            except ApiError as exc:
                if exc.namespace_terminating:
                    return False, f"skipped: namespace {obj['metadata']['namespace']} is being deleted"
                message = f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}"
                if exc.retryable:
                    retry = True
                    errors.append(message + " (retrying)")
                    if exc.status == 404:  # a CRD went away: look again next time
                        self._caps = None
                else:
                    errors.append(message)
                    with self._guard:
                        self._refused.setdefault(key, {})[k] = (*attempt, message)

        wanted = {_key(d) for d in desired}
        pruned = 0
        for k, obj in children.items():
            if k in wanted or not self._is_ours(p, obj):
                continue
            try:
                self._remove_child(obj, p.spec.kafka.deletion_policy)
                pruned += 1
            except ApiError as exc:
                retry = retry or exc.retryable
                errors.append(f"removing {obj['kind']}/{obj['metadata']['name']}: {exc.message}")

        live = {**children, **{k: v for k in wanted if (v := self.cache.get(*k)) is not None}}
        obs = Observation(desired=desired, live=live, caps=caps, refused_partitions=refused, apply_errors=errors)
        previous = body.get("status") or {}
        status = compute_status(p, obs, previous, self.now())
        wrote = self._write_status(body, previous, status)
        summary = (
            f"gen={p.metadata.generation} phase={status['phase']} applied={applied} pruned={pruned} "
            f"unchanged={len(desired) - applied} status={'written' if wrote else 'unchanged'}"
            + (f" errors={len(errors)}" if errors else "")
        )
        return retry, summary

    def _write_status(self, body: dict, previous: dict, status: dict) -> bool:
        if same_status(previous, status):
            return False
        m = body["metadata"]
        result = self.kube.patch_status(
            body.get("apiVersion", PIPELINE.api_version()), PIPELINE.kind, m["namespace"], m["name"], status, previous
        )
        self.cache.wrote(result)
        self._post_transition(body, previous, status)
        return True

    def _post_transition(self, body: dict, previous: dict, status: dict) -> None:
        """Events for changes only: a new phase, or a new reason why the pipeline is not Ready."""

        def ready(s: dict) -> dict:
            return next((c for c in s.get("conditions") or [] if c.get("type") == "Ready"), {})

        before, after = ready(previous), ready(status)
        if previous.get("phase") == status["phase"] and before.get("reason") == after.get("reason"):
            return
        note = f"phase {previous.get('phase') or '-'} -> {status['phase']}: {after.get('message', '')}"
        self._event(body, after.get("reason", "Unknown"), note, "Reconcile", warning=status["phase"] in WARNING_PHASES)

    def _invalid(self, body: dict, message: str) -> tuple[bool, str]:
        """A spec the API server let through but we cannot use (e.g. an older CRD is installed)."""
        previous = body.get("status") or {}
        now = self.now()
        old = next((c for c in previous.get("conditions") or [] if c.get("type") == "Ready"), {})
        cond = {
            "type": "Ready",
            "status": "False",
            "reason": Reason.INVALID_SPEC.value,
            "message": message[:2000],
            "lastTransitionTime": old.get("lastTransitionTime") if old.get("status") == "False" else now,
            "observedGeneration": body["metadata"].get("generation"),
        }
        status = {"observedGeneration": body["metadata"].get("generation"), "phase": "Invalid", "conditions": [cond]}
        wrote = self._write_status(body, previous, status)
        return False, f"phase=Invalid status={'written' if wrote else 'unchanged'}: {message.splitlines()[0]}"

    # ------------------------------------------------------------------------------------ deletion

    def _finalize(self, key: PipelineKey, body: dict) -> tuple[bool, str]:
        """The pipeline is being deleted: its topics are released (Retain) or not, then deleted, then
        our finalizer goes. Same-namespace children are owned and left to the garbage collector."""
        done = self.cleanup(body)
        self._set_finalizers(body, [f for f in body["metadata"]["finalizers"] if f != labels.FINALIZER])
        if done:
            policy = self._deletion_policy(body)
            self._event(body, "TopicsReleased" if policy == "Retain" else "TopicsDeleted", "; ".join(done), "Delete")
        return False, f"finalized: {'; '.join(done) or 'no topics'}"

    @staticmethod
    def _deletion_policy(body: dict) -> str:
        try:
            return parse_pipeline(body).spec.kafka.deletion_policy
        except SpecError:
            return "Retain"  # when in doubt, keep the data

    def cleanup(self, body: dict) -> list[str]:
        """Release (Retain) and delete the pipeline's topics; returns what was done."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        policy = self._deletion_policy(body)
        try:
            expected = [
                d
                for d in build_children(parse_pipeline(body), self.capabilities(), self.options)
                if d["kind"] == "KafkaTopic"
            ]
        except SpecError:
            expected = []
        topics = {k: v for k, v in self.cache.children(key).items() if k[0] == "KafkaTopic"}
        for d in expected:  # not yet seen by the watch: ask the API server
            k = _key(d)
            if k not in topics and (live := self.kube.get(d["apiVersion"], "KafkaTopic", k[1], k[2])):
                topics[k] = live
        done = []
        for k, topic in sorted(topics.items()):
            self._remove_child(topic, policy)
            done.append(f"{'released and deleted' if policy == 'Retain' else 'deleted'} KafkaTopic {k[1]}/{k[2]}")
        return done

    def forget(self, key: PipelineKey) -> None:
        """The pipeline is gone: drop what we remember about its children."""
        with self._guard:
            self._refused.pop(key, None)

    def forget_refusals(self) -> None:
        """Try refused children again (the periodic resync's safety net: a webhook may be fixed)."""
        with self._guard:
            self._refused.clear()
