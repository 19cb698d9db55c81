"""The operator's moving parts, wired once: API client, watch cache, work queue, reconciler, workers.

kopf feeds `observe()` from its watches and calls `cleanup()` from the finalizer handler; worker
threads take pipelines off the queue and reconcile them (the kubernetes client is synchronous).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from fp_operator import metrics
from fp_operator.builders import BuildOptions
from fp_operator.cache import ObjectCache, PipelineKey
from fp_operator.kube import ApiError, Kube
from fp_operator.reconciler import Reconciler
from fp_operator.workqueue import WorkQueue

log = logging.getLogger("fp_operator")


@dataclass(frozen=True)
class RuntimeOptions:
    """Environment variables of the operator (docs/operator.md)."""

    workers: int = 4
    resync_seconds: float = 600.0  # safety net: every pipeline is re-checked this often
    build: BuildOptions = BuildOptions()

    @classmethod
    def from_env(cls) -> "RuntimeOptions":
        env = os.environ
        return cls(
            workers=int(env.get("FRAUDPIPE_OPERATOR_WORKERS", cls.workers)),
            resync_seconds=float(env.get("FRAUDPIPE_OPERATOR_RESYNC_SECONDS", cls.resync_seconds)),
            build=BuildOptions(
                flink_job_cluster_role=env.get("FRAUDPIPE_FLINK_JOB_CLUSTER_ROLE",
                                               BuildOptions.flink_job_cluster_role),
                model_run_as_user=int(env.get("FRAUDPIPE_MODEL_RUN_AS_USER", BuildOptions.model_run_as_user))),
        )


class Runtime:
    def __init__(self, kube: Kube, options: RuntimeOptions | None = None, namespaces: list[str] | None = None):
        self.options = options or RuntimeOptions()
        self.namespaces = list(namespaces or [])
        self.kube = kube
        self.cache = ObjectCache()
        self.queue = WorkQueue()
        self.reconciler = Reconciler(kube, self.cache, self.options.build)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._failures: dict[PipelineKey, int] = {}

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None, namespaces: list[str] | None = None) -> "Runtime":
        return cls(Kube.from_config(kubeconfig), RuntimeOptions.from_env(), namespaces)

    # ---------------------------------------------------------------------------------- lifecycle

    def prime(self, namespaces: list[str] | None = None) -> int:
        """List the pipelines and every child kind once before reconciling (an informer's initial
        list): a reconcile that ran before a child's watch had delivered it would re-apply it."""
        from fraudpipeline.spec import API_VERSION, KIND
        from fp_operator.labels import MANAGED_BY_SELECTOR

        caps = self.reconciler.capabilities(refresh=True)
        kinds = [(API_VERSION, KIND, None), ("apps/v1", "Deployment", MANAGED_BY_SELECTOR),
                 ("v1", "Service", MANAGED_BY_SELECTOR), ("v1", "ServiceAccount", MANAGED_BY_SELECTOR),
                 ("v1", "ConfigMap", MANAGED_BY_SELECTOR),
                 ("autoscaling/v2", "HorizontalPodAutoscaler", MANAGED_BY_SELECTOR),
                 ("policy/v1", "PodDisruptionBudget", MANAGED_BY_SELECTOR),
                 ("rbac.authorization.k8s.io/v1", "RoleBinding", MANAGED_BY_SELECTOR)]
        if caps.kafka_api_version:
            kinds += [(f"kafka.strimzi.io/{caps.kafka_api_version}", k, MANAGED_BY_SELECTOR)
                      for k in ("KafkaTopic", "KafkaBridge")]
        if caps.flink:
            kinds.append(("flink.apache.org/v1beta1", "FlinkDeployment", MANAGED_BY_SELECTOR))
        kinds += [("monitoring.coreos.com/v1", k, MANAGED_BY_SELECTOR) for k in sorted(caps.monitoring)]
        count = 0
        for api_version, kind, selector in kinds:
            for ns in namespaces or [None]:
                for obj in self.kube.list(api_version, kind, ns, selector):
                    self.cache.put(obj)
                    count += 1
        for key in self.cache.pipelines():
            self.queue.add(key)
        return count

    def start(self, namespaces: list[str] | None = None) -> None:
        if self._threads:
            return
        primed = self.prime(namespaces or self.namespaces)
        log.info("cache primed with %d objects; %d pipelines to check", primed, len(self.cache.pipelines()))
        for i in range(self.options.workers):
            t = threading.Thread(target=self._work, name=f"reconcile-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._resync, name="resync", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()

    def _work(self) -> None:
        while (key := self.queue.get()) is not None:
            delay = None
            try:
                delay = self.reconciler.reconcile(key)
                if delay is None:
                    self._failures.pop(key, None)
            except ApiError as exc:
                delay = self._backoff(key)
                log.warning("reconcile %s/%s failed: %s (retry in %.0f s)", key[0], key[1], exc, delay)
            except Exception:  # a bug must not kill the worker; the traceback is in the log
                delay = self._backoff(key)
                log.exception("reconcile %s/%s crashed (retry in %.0f s)", key[0], key[1], delay)
            finally:
                self.queue.done(key)
                metrics.QUEUE_DEPTH.set(len(self.queue))
            if delay:
                self.queue.add_after(key, delay)

    def _backoff(self, key: PipelineKey) -> float:
        n = self._failures[key] = self._failures.get(key, 0) + 1
        return min(60.0, 0.5 * 2 ** (n - 1))

    def _resync(self) -> None:
        while not self._stop.wait(self.options.resync_seconds):
            for key in self.cache.pipelines():
                self.queue.add(key)

    # ------------------------------------------------------------------------------ kopf's inputs

    def observe(self, event_type: str | None, body: dict) -> None:
        """A watch event of a pipeline or a child: remember it and reconcile the pipeline."""
        if event_type == "DELETED":
            owner = self.cache.remove(body)
            if body.get("kind") == "FraudPipeline" and owner:
                self.reconciler.forget(owner)
                return
        else:
            owner = self.cache.put(body)
        if owner:
            self.queue.add(owner)
            metrics.QUEUE_DEPTH.set(len(self.queue))

    def cleanup(self, body: dict) -> list[str]:
        return self.reconciler.cleanup(body)
