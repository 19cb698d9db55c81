"""A child the API server refuses for good (here an admission policy, as a webhook would) is reported
in the status with the API server's message and not retried until something changes; once the
policy is gone and the spec changes, it is applied."""

from __future__ import annotations

import pytest
from helpers import condition, create, edit_spec, pipeline_doc, topics_ready, wait_status

from fp_devtools.bench.operator_harness import wait_for

pytestmark = pytest.mark.integration
ADMISSION = "admissionregistration.k8s.io/v1"
MESSAGE = "HorizontalPodAutoscalers are refused in this namespace (test policy)"


def _probe(ns: str) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "probe", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "maxReplicas": 1},
    }


def enforced(cluster, ns: str) -> bool:
    """Whether the API server's admission refuses HPAs in `ns` now (a dry run): policies reach it a
    moment after they are stored or deleted."""
    r = cluster.http.post(
        cluster.path("autoscaling/v2", "HorizontalPodAutoscaler", ns), json=_probe(ns), params={"dryRun": "All"}
    )
    return r.status_code >= 400 and MESSAGE in r.text


def refuse_hpas(cluster, ns: str) -> str:
    """A ValidatingAdmissionPolicy (CEL, in the API server) denying HPAs in `ns`."""
    name = f"refuse-hpas-{ns}"
    cluster.apply(
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["autoscaling"],
                            "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["horizontalpodautoscalers"],
                        }
                    ]
                },
                "validations": [{"expression": "false", "message": MESSAGE}],
            },
        }
    )
    cluster.apply(
        {
            "apiVersion": ADMISSION,
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
            },
        }
    )
    wait_for(lambda: enforced(cluster, ns), 30, "the admission policy to be enforced")
    return name


def hpa_applies(audit, user: str, ns: str, since: int) -> int:
    return len(
        [
            e
            for e in audit.writes(user, since)
            if e["objectRef"].get("resource") == "horizontalpodautoscalers" and e["objectRef"].get("namespace") == ns
        ]
    )


def test_a_refused_child_is_reported_and_waits_for_a_change(cluster, operator, namespace, audit, identity):
    ns = namespace("fp")
    policy = refuse_hpas(cluster, ns)
    try:
        since = audit.offset()
        create(cluster, pipeline_doc(ns))
        fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Degraded", "Degraded")
        ready = condition(fp, "Ready")
        assert ready["reason"] == "ApplyFailed", ready
        assert "HorizontalPodAutoscaler/payments-model" in ready["message"] and MESSAGE in ready["message"]
        assert "retrying" not in ready["message"]
        refused = hpa_applies(audit, identity.username, ns, since)
        assert refused >= 1
        # Other changes are reconciled, and the refused HPA is not tried again for them.
        topics_ready(cluster, ns, ns, "payments")
        wait_status(
            cluster, ns, "payments", lambda f: condition(f, "TopicsReady").get("status") == "True", "TopicsReady"
        )
        assert hpa_applies(audit, identity.username, ns, since) == refused
    finally:
        cluster.delete(ADMISSION, "ValidatingAdmissionPolicyBinding", None, policy)
        cluster.delete(ADMISSION, "ValidatingAdmissionPolicy", None, policy)
        wait_for(lambda: not enforced(cluster, ns), 30, "the admission policy to be gone")
    # A change of what the HPA should be: tried again, and applied now the policy is gone.
    edit_spec(cluster, ns, "payments", {"model": {"autoscaling": {"maxReplicas": 4}}})
    fp = wait_status(cluster, ns, "payments", lambda f: f["status"]["phase"] == "Progressing", "Progressing")
    assert "ApplyFailed" not in {c["reason"] for c in fp["status"]["conditions"]}
    hpa = cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, "payments-model")
    assert hpa["spec"]["maxReplicas"] == 4
