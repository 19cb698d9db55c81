"""Leader election on a coordination.k8s.io/v1 Lease (client-go's leaderelection, in small).

Every replica watches (kopf), so every cache stays warm; only the holder of the Lease runs the
reconcile workers. The holder renews the Lease every `retry_seconds`; a standby tries to take it
every `retry_seconds` and may once it has seen the same record, unrenewed, for `lease_seconds`
(measured on its own clock, so clock skew between nodes does not matter). A leader that cannot
renew for `renew_deadline_seconds` (< lease_seconds) steps down before anyone can take over. A
leader that stops cleanly releases the Lease so that a standby takes over at once.

Failover after a crash therefore takes at most lease_seconds + retry_seconds (about 17 s with the
defaults, those of client-go); every renewal is one write, 30 a minute.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from fp_operator.kinds import LEASE
from fp_operator.kube import ApiError, Kube

log = logging.getLogger("fp_operator.leader")


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str | None = None,
        *,
        lease_seconds: float = 15.0,
        renew_deadline_seconds: float = 10.0,
        retry_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        assert renew_deadline_seconds < lease_seconds
        self.kube, self.namespace, self.name = kube, namespace, name
        self.identity = identity or f"{kube.identity}_{uuid.uuid4().hex[:8]}"
        self.lease_seconds, self.renew_deadline, self.retry = lease_seconds, renew_deadline_seconds, retry_seconds
        self.clock = clock
        self.leading = False
        self._observed: tuple[str | None, str | None, str | None] | None = None  # (holder, renewTime, rv)
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------- one attempt

    def _lease(self, holder: str, transitions: int, acquired: str, previous: dict | None = None) -> dict:
        meta = {"name": self.name, "namespace": self.namespace}
        if previous is not None:
            meta["resourceVersion"] = previous["metadata"]["resourceVersion"]
        return {
            "apiVersion": LEASE.api_version(),
            "kind": LEASE.kind,
            "metadata": meta,
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": int(self.lease_seconds),
                "acquireTime": acquired,
                "renewTime": _micro_now(),
                "leaseTransitions": transitions,
            },
        }

    def try_acquire_or_renew(self) -> bool:
        """One round: True when we hold the Lease afterwards."""
        lease = self.kube.get(LEASE.api_version(), LEASE.kind, self.namespace, self.name)
        if lease is None:
            try:
                self.kube.create(self._lease(self.identity, 0, _micro_now()))
                return True
            except ApiError as exc:
                if exc.status == 409:  # another replica created it first
                    return False
                raise
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock()
        if holder == self.identity:
            new = self._lease(
                self.identity, spec.get("leaseTransitions") or 0, spec.get("acquireTime") or _micro_now(), lease
            )
        elif holder and self.clock() - self._observed_at < float(
            spec.get("leaseDurationSeconds") or self.lease_seconds
        ):
            return False  # held, and renewed within the lease duration as far as we have seen
        else:
            new = self._lease(self.identity, (spec.get("leaseTransitions") or 0) + 1, _micro_now(), lease)
        try:
            self.kube.replace(new)
        except ApiError as exc:
            if exc.status == 409:  # someone else wrote it first
                return False
            raise
        return True

    def release(self) -> None:
        """Give the Lease up (on a clean stop) so that a standby need not wait for it to expire."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self.kube.get(LEASE.api_version(), LEASE.kind, self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                released = self._lease("", (lease["spec"].get("leaseTransitions") or 0), _micro_now(), lease)
                released["spec"]["leaseDurationSeconds"] = 1
                self.kube.replace(released)
                log.info("released the lease %s/%s", self.namespace, self.name)
        except ApiError as exc:
            log.warning("could not release the lease %s/%s: %s", self.namespace, self.name, exc)

    # ------------------------------------------------------------------------------------- loop

    def start(self, on_started_leading: Callable[[], None], on_stopped_leading: Callable[[], None]) -> None:
        def run() -> None:
            self._run(on_started_leading, on_stopped_leading)

        self._thread = threading.Thread(target=run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry + 5)
        self.release()

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except ApiError as exc:
            log.warning("leader election on %s/%s failed: %s", self.namespace, self.name, exc)
            return False

    def _run(self, on_started_leading: Callable[[], None], on_stopped_leading: Callable[[], None]) -> None:
        log.info("waiting to lead (lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
        while not self._stop.is_set():
            if self._attempt():
                break
            self._stop.wait(self.retry)
        else:
            return
        self.leading = True
        log.info("leading (lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
        on_started_leading()
        renewed = self.clock()
        while not self._stop.wait(self.retry):
            if self._attempt():
                renewed = self.clock()
                continue
            taken = bool(self._observed and self._observed[0] not in ("", self.identity))
            if taken or self.clock() - renewed >= self.renew_deadline:
                self.leading = False
                log.error(
                    "lost the lease %s/%s: %s",
                    self.namespace,
                    self.name,
                    f"{self._observed[0]} holds it"
                    if taken and self._observed
                    else f"not renewed for {self.clock() - renewed:.0f} s",
                )
                on_stopped_leading()
                return
