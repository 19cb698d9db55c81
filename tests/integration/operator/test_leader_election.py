"""Two operator replicas with leader election on the real API server: one reconciles, the other
watches without writing; killing the leader (SIGKILL: no chance to release the Lease) hands over to
the standby within the lease duration; a clean stop hands over at once."""

from __future__ import annotations

import time

import pytest
from helpers import create, edit_spec, pipeline_doc, wait_status

from fp_devtools.bench.operator_harness import OPERATOR_ACCOUNT, OPERATOR_NAMESPACE, OperatorProcess, wait_for

pytestmark = pytest.mark.integration
LEASE_SECONDS, RETRY_SECONDS = 15, 2  # fp_operator.runtime.LeaderElection's defaults


def metric(op: OperatorProcess, name: str, **labels: str) -> float:
    total = 0.0
    for line in op.metrics().splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def leading(op: OperatorProcess) -> bool:
    return metric(op, "fraudpipeline_operator_leader") == 1


def writes(op: OperatorProcess) -> float:
    """Writes by this replica's reconciler (the Lease excluded)."""
    return sum(
        metric(op, "fraudpipeline_operator_api_requests_total", verb=v) for v in ("apply", "patch", "delete")
    ) + metric(op, "fraudpipeline_operator_api_requests_total", verb="create", kind="Event")


def lease(cluster) -> dict:
    return cluster.get("coordination.k8s.io/v1", "Lease", OPERATOR_NAMESPACE, OPERATOR_ACCOUNT) or {}


def test_standby_takes_over_when_the_leader_dies(cluster, operator, identity, namespace, tmp_path):
    ns = namespace("fp")
    operator.stop()  # the session's single operator would reconcile too
    a = OperatorProcess(identity.kubeconfig, tmp_path / "a.log", leader_election=True)
    b = OperatorProcess(identity.kubeconfig, tmp_path / "b.log", leader_election=True)
    try:
        cluster.delete("coordination.k8s.io/v1", "Lease", OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)  # a fresh start
        a.start()
        wait_for(lambda: leading(a), 30, "the first replica to lead")
        b.start()
        create(cluster, pipeline_doc(ns, "ha"))
        wait_status(cluster, ns, "ha", lambda f: True, "the leader's first status")
        assert leading(a) and not leading(b)
        assert writes(b) == 0, b.tail()
        assert lease(cluster)["spec"]["holderIdentity"]

        transitions = lease(cluster)["spec"].get("leaseTransitions", 0)
        a.kill()
        killed = time.monotonic()
        wait_for(lambda: leading(b), LEASE_SECONDS + 3 * RETRY_SECONDS + 5, "the standby to take over", interval=0.2)
        took = time.monotonic() - killed
        assert took <= LEASE_SECONDS + 3 * RETRY_SECONDS, took
        assert lease(cluster)["spec"]["leaseTransitions"] == transitions + 1
        # The new leader reconciles: a change made after the takeover reaches the children and status.
        edit_spec(cluster, ns, "ha", {"stream": {"parallelism": 3}})
        wait_status(cluster, ns, "ha", lambda f: f["status"]["stream"]["parallelism"] == 3, "the new leader's update")
        assert writes(b) > 0

        # A clean stop releases the Lease: the next replica need not wait for it to expire.
        a = OperatorProcess(identity.kubeconfig, tmp_path / "a2.log", leader_election=True)
        a.start()
        b.stop()
        stopped = time.monotonic()
        wait_for(lambda: leading(a), LEASE_SECONDS, "the restarted replica to take over", interval=0.2)
        assert time.monotonic() - stopped < LEASE_SECONDS / 2, "the Lease was not released on stop"
    finally:
        a.stop()
        b.stop()
        operator.start()
