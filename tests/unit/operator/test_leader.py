"""Leader election on a Lease, against an in-memory Lease store with the API server's rules
(create refuses a second create, update refuses a stale resourceVersion)."""

from __future__ import annotations

import copy
import itertools

from fp_operator.kube import ApiError
from fp_operator.leader import LeaderElector


class Leases:
    def __init__(self):
        self.lease: dict | None = None
        self._rv = itertools.count(1)
        self.identity = "host"

    def get(self, api_version, kind, namespace, name):
        return copy.deepcopy(self.lease)

    def create(self, obj):
        if self.lease is not None:
            raise ApiError(409, "already exists")
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.lease)

    def replace(self, obj):
        if obj["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise ApiError(409, "the object has been modified")
        self.lease = copy.deepcopy(obj)
        self.lease["metadata"]["resourceVersion"] = str(next(self._rv))
        return copy.deepcopy(self.lease)


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def elector(store, identity, clock):
    return LeaderElector(
        store, "ops", "lease", identity, lease_seconds=15, renew_deadline_seconds=10, retry_seconds=2, clock=clock
    )


def test_one_leader_and_a_standby_that_takes_over_only_once_the_lease_is_stale():
    store, clock = Leases(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    clock.t = 10
    assert a.try_acquire_or_renew()  # renewed
    assert not b.try_acquire_or_renew()  # b saw a new record at t=10: it is valid until t=25
    clock.t = 24
    assert not b.try_acquire_or_renew()
    clock.t = 26  # a died after its renewal at t=10
    assert b.try_acquire_or_renew()
    assert store.lease["spec"]["holderIdentity"] == "b" and store.lease["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew()  # a comes back: b holds a fresh lease


def test_a_released_lease_is_taken_at_once():
    store, clock = Leases(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert a.try_acquire_or_renew()
    a.leading = True
    assert not b.try_acquire_or_renew()
    a.release()
    assert store.lease["spec"]["holderIdentity"] == ""
    assert b.try_acquire_or_renew()


def test_two_standbys_racing_for_a_stale_lease_get_one_winner():
    store, clock = Leases(), Clock()
    a, b, c = elector(store, "a", clock), elector(store, "b", clock), elector(store, "c", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew() and not c.try_acquire_or_renew()
    clock.t = 16
    stale = copy.deepcopy(store.lease)
    assert b.try_acquire_or_renew()
    store.get = lambda *args: copy.deepcopy(stale)  # c read the lease before b's write landed
    assert not c.try_acquire_or_renew()  # its update carries the old resourceVersion: 409
