"""The chart renders, lints, and its ClusterRole grants what the operator's code uses (and no more)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fp_operator.kube import RESOURCES

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
    r = subprocess.run([_helm(), "template", "fp", str(CHART), "--set", "operator.wrokers=2"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "wrokers" in r.stderr


def test_crd_copy_and_operator_deployment():
    docs = render()
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"} <= kinds
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:3] == ["operator", "run", "--all-namespaces"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["FRAUDPIPE_FLINK_JOB_CLUSTER_ROLE"] == "fp-fraudpipeline-flink-job"
    assert (CHART / "crds" / "fraudpipelines.frauddetect.dev.yaml").read_text() == \
        (REPO / "crds" / "fraudpipelines.frauddetect.dev.yaml").read_text()


def test_cluster_role_covers_exactly_the_kinds_the_operator_writes():
    role = next(d for d in render() if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "fp-fraudpipeline")
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                grants.setdefault((group, res), set()).update(rule["verbs"])
    assert "*" not in {v for verbs in grants.values() for v in verbs}
    for kind, res in RESOURCES.items():
        verbs = grants.get((res.group, res.plural), set())
        if kind == "Event":
            assert verbs == {"create"}
        elif kind == "FraudPipeline":
            assert verbs == {"get", "list", "watch", "patch"}
            assert grants[(res.group, "fraudpipelines/status")] == {"get", "patch"}
        else:  # children: server-side apply needs create and patch; prune needs delete
            assert verbs == {"get", "list", "watch", "create", "patch", "delete"}, kind
    bind = [r for r in role["rules"] if "bind" in r["verbs"]]
    assert bind == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
                     "resourceNames": ["fp-fraudpipeline-flink-job"]}]
