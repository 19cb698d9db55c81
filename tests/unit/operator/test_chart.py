"""The chart renders, lints, and its ClusterRole grants what the operator's code uses (and no more)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fp_operator.kinds import CHILDREN, EVENT, LEASE, PIPELINE

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "fraudpipeline"


def _helm() -> str:
    cache = Path(os.environ.get("FRAUDPIPE_CACHE", Path.home() / ".cache" / "fraudpipeline"))
    found = shutil.which("helm") or next((str(p) for p in sorted(cache.glob("helm/*/helm"))), None)
    if not found:
        pytest.skip("helm not found (on PATH or in ~/.cache/fraudpipeline/helm): `fraudpipe dev prepare --with kube`")
    return found


def render(*sets: str) -> list[dict]:
    argv = [_helm(), "template", "fp", str(CHART), "--namespace", "fraudpipeline-system"]
    for s in sets:
        argv += ["--set", s]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_lints_strictly():
    r = subprocess.run([_helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_values_schema_refuses_unknown_keys():
    r = subprocess.run(
        [_helm(), "template", "fp", str(CHART), "--set", "operator.wrokers=2"], capture_output=True, text=True
    )
    assert r.returncode != 0 and "wrokers" in r.stderr


def test_the_chart_takes_globals_as_a_subchart_does():
    """A parent chart passes `global` to every subchart: a strict schema must let it through."""
    r = subprocess.run(
        [_helm(), "template", "fp", str(CHART), "--set", "global.imageRegistry=registry.example"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def test_crd_copy_and_operator_deployment():
    docs = render()
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"} <= kinds
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:2] == ["run", "--all-namespaces"] and "--leader-election" not in c["args"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FRAUDPIPE_FLINK_JOB_CLUSTER_ROLE"] == "fp-fraudpipeline-flink-job"
    assert (CHART / "crds" / "fraudpipelines.frauddetect.dev.yaml").read_text() == (
        REPO / "crds" / "fraudpipelines.frauddetect.dev.yaml"
    ).read_text()


def _grants(role: dict) -> dict[tuple[str, str], set[str]]:
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                grants.setdefault((group, res), set()).update(rule["verbs"])
    assert "*" not in {v for verbs in grants.values() for v in verbs}
    return grants


def test_cluster_role_covers_exactly_the_kinds_the_operator_writes():
    """Driven by the registry of kinds: a new child kind without its rule fails here."""
    role = next(d for d in render() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "fp-fraudpipeline")
    grants = _grants(role)
    assert grants[(EVENT.group, EVENT.plural)] == {"create"}
    assert grants[(PIPELINE.group, PIPELINE.plural)] == {"get", "list", "watch", "patch"}
    assert grants[(PIPELINE.group, f"{PIPELINE.plural}/status")] == {"get", "patch"}
    for k in CHILDREN:  # server-side apply needs create and patch; prune needs delete
        assert grants.get((k.group, k.plural)) == {"get", "list", "watch", "create", "patch", "delete"}, k.kind
    children = {(k.group, k.plural) for k in CHILDREN}
    framework = {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
        (PIPELINE.group, f"{PIPELINE.plural}/finalizers"),
        ("rbac.authorization.k8s.io", "clusterroles"),
    }
    assert set(grants) == children | framework | {
        (EVENT.group, EVENT.plural),
        (PIPELINE.group, PIPELINE.plural),
        (PIPELINE.group, f"{PIPELINE.plural}/status"),
    }
    bind = [r for r in role["rules"] if "bind" in r["verbs"]]
    assert bind == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": ["fp-fraudpipeline-flink-job"],
        }
    ]


def test_several_replicas_need_leader_election():
    r = subprocess.run(
        [_helm(), "template", "fp", str(CHART), "--set", "operator.replicas=2"], capture_output=True, text=True
    )
    assert r.returncode != 0 and "leaderElection" in r.stderr
    docs = render("operator.replicas=2", "operator.leaderElection.enabled=true")
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"]["type"] == "RollingUpdate"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--leader-election" in c["args"] and "--leader-election-id=fp-fraudpipeline" in c["args"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # the Lease only: a namespaced Role in the release namespace
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "fraudpipeline-system"
    assert _grants(role) == {(LEASE.group, LEASE.plural): {"create", "get", "update"}}
    named = [r for r in role["rules"] if "update" in r["verbs"]]
    assert named[0]["resourceNames"] == ["fp-fraudpipeline"]
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


def _pods(docs: list[dict]) -> dict[str, dict]:
    """The pod specs of the operator's Deployment and of the pre-delete hook's Job."""
    return {d["kind"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")}


def test_operator_pods_are_restricted_by_default_and_take_pull_secrets():
    pods = _pods(render())
    assert set(pods) == {"Deployment", "Job"}
    for spec in pods.values():
        assert "imagePullSecrets" not in spec
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = spec["containers"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    pods = _pods(
        render(
            "operator.imagePullSecrets[0].name=registry-credentials",
            "operator.podSecurityContext.runAsUser=20002",
            "operator.securityContext.readOnlyRootFilesystem=false",
        )
    )
    for spec in pods.values():
        assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
        assert spec["securityContext"]["runAsUser"] == 20002 and spec["securityContext"]["runAsNonRoot"] is True
        assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False
