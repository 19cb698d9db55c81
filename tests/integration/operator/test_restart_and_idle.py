"""The operator restarts without redoing work, and writes nothing when nothing changes."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC

import pytest
from helpers import (
    children,
    create,
    edit_spec,
    flink_running,
    model_pods_ready,
    pipeline_doc,
    topics_ready,
    wait_status,
)

from fp_devtools.bench.operator_harness import describe, wait_for

pytestmark = pytest.mark.integration
IDLE_SECONDS = float(os.environ.get("FRAUDPIPE_IDLE_SECONDS", "60"))


def settle(audit, user, quiet: float = 3.0, timeout: float = 60.0) -> int:
    """Wait until the operator has written nothing for `quiet` seconds; returns the audit offset."""

    def quiet_now():
        offset = audit.offset()
        events = audit.writes(user, max(0, offset - 2_000_000))
        last = max((e["stageTimestamp"] for e in events), default="")
        if not last:
            return offset
        from datetime import datetime

        age = datetime.now(UTC) - datetime.fromisoformat(last.replace("Z", "+00:00"))
        return offset if age.total_seconds() >= quiet else None

    return wait_for(quiet_now, timeout, f"{quiet:.0f} s without operator writes", interval=0.5)


def test_restart_converges_without_duplicates_or_redundant_writes(cluster, operator, namespace, audit, identity):
    ns = namespace("fp")
    for name in ("alpha", "beta"):
        create(cluster, pipeline_doc(ns, name))
    for name in ("alpha", "beta"):
        wait_status(cluster, ns, name, lambda f: True, f"{name} status")
    before = {name: set(children(cluster, ns, name)) for name in ("alpha", "beta")}
    operator.stop()
    try:
        since = audit.offset()
        edit_spec(cluster, ns, "alpha", {"stream": {"parallelism": 5}})
        cluster.delete("v1", "Service", ns, "beta-model")
        create(cluster, pipeline_doc(ns, "gamma"))
    finally:
        operator.start()
    wait_status(cluster, ns, "alpha", lambda f: f["status"]["stream"]["parallelism"] == 5, "alpha updated")
    wait_for(lambda: ("Service", ns, "beta-model") in children(cluster, ns, "beta"), 15, "beta's Service back")
    wait_status(cluster, ns, "gamma", lambda f: True, "gamma status")
    settle(audit, identity.username)

    for name in ("alpha", "beta"):
        assert set(children(cluster, ns, name)) == before[name]
    assert len(children(cluster, ns, "gamma")) == len(before["alpha"])
    writes = [
        w
        for w in describe(audit.writes(identity.username, since))
        if "/status" not in w and not w.startswith("create events")
    ]
    applies = Counter(w.split(" -> ")[0] for w in writes if w.split()[1] != "fraudpipelines")
    assert all(n == 1 for n in applies.values()), applies  # nothing applied twice
    touched = {a.split()[2].split("/")[1] for a in applies}
    # alpha: only its FlinkDeployment; beta: only the Service; gamma: everything, once.
    assert {a for a in applies if "alpha" in a} == {f"patch flinkdeployments {ns}/alpha-stream"}, applies
    assert {a for a in applies if "beta" in a} == {f"patch services {ns}/beta-model"}, applies
    assert len([a for a in applies if "gamma" in a]) == len(before["alpha"]), applies
    assert touched


def test_idle_operator_makes_no_api_writes(cluster, operator, namespace, audit, identity):
    ns = namespace("fp")
    for name in ("idle-a", "idle-b", "idle-c"):
        create(cluster, pipeline_doc(ns, name, monitoring__enabled=True, kafka__bridge__enabled=True))
    for name in ("idle-a", "idle-b", "idle-c"):
        wait_status(cluster, ns, name, lambda f: True, f"{name} status")
    topics_ready(cluster, ns, ns, "idle-a")
    flink_running(cluster, ns, "idle-a")
    model_pods_ready(cluster, ns, "idle-a")
    wait_status(cluster, ns, "idle-a", lambda f: f["status"]["phase"] == "Ready", "idle-a Ready")
    start = settle(audit, identity.username)
    t0 = time.monotonic()
    # A measurement window, not a synchronisation: kube-controller-manager keeps updating HPA and
    # Deployment status meanwhile, and the operator sees those events.
    time.sleep(IDLE_SECONDS)
    writes = describe(audit.writes(identity.username, start))
    assert writes == [], f"{len(writes)} writes in {time.monotonic() - t0:.0f} idle seconds: {writes[:20]}"
