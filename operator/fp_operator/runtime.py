"""The operator's moving parts, wired once: API client, watch cache, work queue, reconciler, workers,
and (with several replicas) leader election.

kopf feeds `observe()` from its watches on every replica, so every cache stays current; worker
threads take pipelines off the queue and reconcile them (plain synchronous HTTP) on the leader
only. Without leader election the one replica leads from the start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from fp_operator import metrics
from fp_operator.builders import BuildOptions
from fp_operator.cache import ObjectCache
from fp_operator.kinds import CHILDREN, PIPELINE
from fp_operator.kube import ApiError, Kube
from fp_operator.labels import MANAGED_BY_SELECTOR
from fp_operator.leader import LeaderElector
from fp_operator.reconciler import Reconciler
from fp_operator.workqueue import Backoff, WorkQueue

log = logging.getLogger("fp_operator")


@dataclass(frozen=True)
class LeaderElection:
    """Where the Lease lives; None in RuntimeOptions: a single replica, leading from the start."""

    namespace: str
    name: str = "fraudpipeline-operator"
    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0


@dataclass(frozen=True)
class RuntimeOptions:
    """Environment variables and flags of the operator (docs/operator.md)."""

    workers: int = 4
    resync_seconds: float = 600.0  # safety net: every pipeline is re-checked this often
    build: BuildOptions = field(default_factory=BuildOptions)
    leader_election: LeaderElection | None = None

    @classmethod
    def from_env(cls, leader_election: LeaderElection | None = None) -> RuntimeOptions:
        env = os.environ
        return cls(
            workers=int(env.get("FRAUDPIPE_OPERATOR_WORKERS", cls.workers)),
            resync_seconds=float(env.get("FRAUDPIPE_OPERATOR_RESYNC_SECONDS", cls.resync_seconds)),
            build=BuildOptions(
                flink_job_cluster_role=env.get("FRAUDPIPE_FLINK_JOB_CLUSTER_ROLE", BuildOptions.flink_job_cluster_role),
                model_run_as_user=int(env.get("FRAUDPIPE_MODEL_RUN_AS_USER", BuildOptions.model_run_as_user)),
            ),
            leader_election=leader_election,
        )


class Runtime:
    def __init__(
        self,
        kube: Kube,
        options: RuntimeOptions | None = None,
        namespaces: list[str] | None = None,
        on_lost_leadership: Callable[[], None] | None = None,
    ):
        self.options = options or RuntimeOptions()
        self.namespaces = list(namespaces or [])
        self.kube = kube
        self.cache = ObjectCache()
        self.queue = WorkQueue()
        self.backoff = Backoff()
        self.reconciler = Reconciler(kube, self.cache, self.options.build)
        self.on_lost_leadership = on_lost_leadership
        le = self.options.leader_election
        self.elector = (
            LeaderElector(
                kube,
                le.namespace,
                le.name,
                lease_seconds=le.lease_seconds,
                renew_deadline_seconds=le.renew_deadline_seconds,
                retry_seconds=le.retry_seconds,
            )
            if le
            else None
        )
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @classmethod
    def from_environment(
        cls,
        kubeconfig: str | None = None,
        namespaces: list[str] | None = None,
        leader_election: LeaderElection | None = None,
        on_lost_leadership: Callable[[], None] | None = None,
    ) -> Runtime:
        return cls(
            Kube.from_config(kubeconfig), RuntimeOptions.from_env(leader_election), namespaces, on_lost_leadership
        )

    @property
    def leading(self) -> bool:
        return bool(self._threads)

    # ---------------------------------------------------------------------------------- lifecycle

    def prime(self, namespaces: list[str] | None = None) -> int:
        """List the pipelines and every served child kind once before reconciling (an informer's
        initial list): a reconcile that ran before a child's watch had delivered it would re-apply
        it. Listed objects are stored like watch events, so our own writes are never undone."""
        caps = self.reconciler.capabilities(refresh=True)
        lists = [(PIPELINE.api_version(), PIPELINE.kind, None)]
        lists += [(caps.api_version(k.kind), k.kind, MANAGED_BY_SELECTOR) for k in CHILDREN if caps.serves(k.kind)]
        count = 0
        for api_version, kind, selector in lists:
            for ns in namespaces or [None]:
                for obj in self.kube.list(api_version, kind, ns, selector):
                    self.cache.observe(None, obj)
                    count += 1
        for key in self.cache.pipelines():
            self.queue.add(key)
        return count

    def start(self, namespaces: list[str] | None = None) -> None:
        """Lead now, or (with leader election) once the Lease is ours."""
        if namespaces is not None:
            self.namespaces = list(namespaces)
        if self.elector is None:
            self._lead()
        else:
            self.elector.start(self._lead, self._lost)

    def _prime_until_done(self) -> int:
        """Prime, retrying transient refusals (an API server whose watch cache for a new CRD is still
        initializing answers 429); a permanent one (say, RBAC missing for a kind) is raised."""
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            try:
                return self.prime(self.namespaces)
            except ApiError as exc:
                if not exc.retryable or self._stop.is_set():
                    raise
                delay = backoff.next("prime")
                log.warning("priming the cache failed: %s (retry in %.1f s)", exc, delay)
                self._stop.wait(delay)

    def _lead(self) -> None:
        if self._threads:
            return
        primed = self._prime_until_done()
        log.info("cache primed with %d objects; %d pipelines to check", primed, len(self.cache.pipelines()))
        for i in range(self.options.workers):
            t = threading.Thread(target=self._work, name=f"reconcile-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._resync, name="resync", daemon=True)
        t.start()
        self._threads.append(t)
        metrics.LEADER.set(1)

    def _lost(self) -> None:
        """Another replica may lead now: stop writing at once, then let the process end (its pod
        restarts as a standby, with a fresh cache)."""
        self._halt()
        if self.on_lost_leadership is not None:
            self.on_lost_leadership()

    def _halt(self) -> None:
        metrics.LEADER.set(0)
        self._stop.set()
        self.queue.shutdown()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()

    def stop(self) -> None:
        self._halt()
        if self.elector is not None:
            self.elector.stop()

    def _work(self) -> None:
        while (key := self.queue.get()) is not None:
            retry = False
            try:
                retry = self.reconciler.reconcile(key)
            except ApiError as exc:
                retry = exc.retryable
                log.warning(
                    "reconcile %s/%s failed: %s%s",
                    key[0],
                    key[1],
                    exc,
                    "" if retry else " (not retried until the pipeline or a child changes)",
                )
            except Exception:  # a bug must not kill the worker; the traceback is in the log
                retry = True
                log.exception("reconcile %s/%s crashed", key[0], key[1])
            finally:
                self.queue.done(key)
                metrics.QUEUE_DEPTH.set(len(self.queue))
            if retry:
                delay = self.backoff.next(key)
                log.info("retrying %s/%s in %.1f s (failure %d)", key[0], key[1], delay, self.backoff.failures(key))
                self.queue.add_after(key, delay)
            else:
                self.backoff.forget(key)

    def _resync(self) -> None:
        while not self._stop.wait(self.options.resync_seconds):
            self.reconciler.forget_refusals()
            for key in self.cache.pipelines():
                self.queue.add(key)

    # ------------------------------------------------------------------------------ kopf's inputs

    def observe(self, event_type: str | None, body: dict) -> None:
        """A watch event of a pipeline or a child: remember it and reconcile the pipeline. Runs on
        kopf's event loop: no requests and no lock that a request holds."""
        owners = self.cache.observe(event_type, body)
        if body.get("kind") == PIPELINE.kind and event_type == "DELETED":
            for owner in owners:
                self.reconciler.forget(owner)
                self.backoff.forget(owner)
            return
        for owner in owners:
            self.queue.add(owner)
        metrics.QUEUE_DEPTH.set(len(self.queue))
