"""What a child's own operator says about it: one reader per kind that has a status (pure).

Each reader turns a live object (or None: not created yet) into `Readiness`; status.py adds what
the spec changes (suspend) and turns it into conditions. The rules are the children's operators'
own: Strimzi's Ready condition, the Flink operator's lifecycle and job states, a Deployment's
rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

FLINK_HEALTHY_LIFECYCLE = frozenset({"STABLE", "DEPLOYED"})
FLINK_FAILED_LIFECYCLE = frozenset({"FAILED", "ROLLED_BACK"})


@dataclass(frozen=True)
class Readiness:
    ready: bool
    failed: bool  # the child's operator reports a failure (not merely "not yet")
    message: str = ""


def condition(obj: dict | None, ctype: str) -> dict | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def generation_seen(obj: dict) -> bool:
    """The child's operator has looked at its current spec (or does not say)."""
    seen = (obj.get("status") or {}).get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    return seen is None or generation is None or seen >= generation


def kafka_topic(obj: dict | None) -> Readiness:
    """Strimzi's rule: condition Ready=True for the current generation."""
    if obj is None:
        return Readiness(False, False, "not created yet")
    if not generation_seen(obj) or (obj.get("status") or {}).get("observedGeneration") is None:
        return Readiness(False, False, "waiting for Strimzi's Topic Operator")
    ready = condition(obj, "Ready")
    if ready is None:
        return Readiness(False, False, "no Ready condition yet")
    if ready.get("status") == "True":
        return Readiness(True, False)
    return Readiness(False, True, f"{ready.get('reason') or 'NotReady'}: {ready.get('message') or ''}".strip())


def flink_deployment(obj: dict | None) -> Readiness:
    """Running: lifecycle STABLE or DEPLOYED, job RUNNING, JobManager READY, no error, spec seen."""
    if obj is None:
        return Readiness(False, False, "FlinkDeployment not created yet")
    st = obj.get("status") or {}
    lifecycle = st.get("lifecycleState")
    job_state = (st.get("jobStatus") or {}).get("state")
    error = st.get("error") or None
    where = f"lifecycleState={lifecycle or '-'}, job={job_state or '-'}"
    if lifecycle in FLINK_FAILED_LIFECYCLE or job_state == "FAILED":
        return Readiness(False, True, f"{where}: {error or 'see the FlinkDeployment'}"[:1000])
    if (
        lifecycle in FLINK_HEALTHY_LIFECYCLE
        and job_state == "RUNNING"
        and st.get("jobManagerDeploymentStatus") == "READY"
        and not error
        and generation_seen(obj)
    ):
        return Readiness(True, False, f"job running ({where})")
    return Readiness(False, False, f"waiting for the Flink Kubernetes Operator ({where})")


def deployment(obj: dict | None) -> Readiness:
    """The rollout of the current generation is complete and at least one replica is available."""
    if obj is None:
        return Readiness(False, False, "Deployment not created yet")
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    desired = spec.get("replicas", 1)
    ready = st.get("readyReplicas", 0) or 0
    available = st.get("availableReplicas", 0) or 0
    progressing = condition(obj, "Progressing") or {}
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(False, True, progressing.get("message", "rollout stuck"))
    rolled_out = (
        generation_seen(obj)
        and (st.get("updatedReplicas", 0) or 0) >= desired
        and (st.get("replicas", 0) or 0) <= desired
    )
    if rolled_out and available >= 1:
        return Readiness(True, False, f"{ready}/{desired} replicas ready")
    return Readiness(
        False, False, f"{available}/{desired} replicas available" + ("" if rolled_out else " (rollout in progress)")
    )
