"""The chart's namespaced mode (Roles, not a ClusterRole), the operator pod's defaults that
kube-score asks for, and the pre-delete hook."""

from __future__ import annotations

from test_chart import _grants, render

from fp_operator.kinds import CHILDREN


def _by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def test_namespaced_mode_grants_roles_in_each_watched_namespace_only():
    everywhere = render()
    (all_ns_role,) = [r for r in _by_kind(everywhere, "ClusterRole") if r["metadata"]["name"] == "fp-fraudpipeline"]
    docs = render("operator.watchNamespaces={fraud,kafka}")
    roles = _by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["fraud", "kafka"]
    cluster_scoped = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
    expected = {k: v for k, v in _grants(all_ns_role).items() if k not in cluster_scoped}
    for role in roles:
        assert _grants(role) == expected, role["metadata"]["namespace"]
        for k in CHILDREN:
            assert (k.group, k.plural) in _grants(role)
    bindings = _by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["fraud", "kafka"]
    assert all(b["subjects"][0]["namespace"] == "fraudpipeline-system" for b in bindings)
    # No ClusterRole grants anything but reads of cluster-scoped kinds (and the Flink job's role,
    # which only RoleBindings the operator creates ever bind).
    for cr in _by_kind(docs, "ClusterRole"):
        if cr["metadata"]["name"] == "fp-fraudpipeline-flink-job":
            continue
        assert set(_grants(cr)) == cluster_scoped and all(v <= {"list", "watch"} for v in _grants(cr).values())
    dep = _by_kind(docs, "Deployment")[0]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=fraud" in args and "--namespace=kafka" in args and "--all-namespaces" not in args


def test_operator_pod_has_resources_and_a_readiness_probe_by_default():
    c = _by_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["resources"]["limits"]["memory"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_pre_delete_hook_waits_for_pipeline_deletion_as_the_operator():
    (job,) = _by_kind(render("operator.watchNamespaces={fraud}"), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fp-fraudpipeline" and pod["restartPolicy"] == "Never"
    c = pod["containers"][0]
    assert c["args"] == ["wait-for-deletions", "--timeout=120", "--namespace=fraud"]
    assert not _by_kind(render("operator.uninstall.waitForPipelineDeletion=false"), "Job")
