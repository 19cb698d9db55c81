"""Run the operator against a real API server the way a cluster would, for tests and the benchmark.

- the operator runs as its own ServiceAccount bound to the chart's ClusterRole (rendered with
  `helm template`), so missing permissions fail here, not in production;
- it runs as a separate process (`python -m fp_operator run`, the image's entry point), so its
  RSS is its own;
- its API writes are counted from the API server's audit log (by user), not by the operator itself.

Needs a dev API server (`fraudpipe dev up --with kube`): httpx and the dev helpers are imported
inside the functions.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fp_operator.crd import CRD_FILE_NAME, repo_root
from fraudpipeline import spec

OPERATOR_NAMESPACE = "fraudpipeline-system"
OPERATOR_ACCOUNT = "fraudpipeline-operator"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# Kinds tests touch that the operator itself never does (the operator's are in fp_operator.kinds).
_OTHER_PLURALS = {
    "CustomResourceDefinition": "customresourcedefinitions",
    "Namespace": "namespaces",
    "Pod": "pods",
    "ReplicaSet": "replicasets",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
    "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
}


# Same spec as examples/minimal.yaml (a unit test keeps them equal); here so that the benchmark
# does not depend on the examples folder being present.
MINIMAL_SPEC = {
    "kafka": {"cluster": "main"},
    "model": {"image": "ghcr.io/frauddetect/fraudpipeline-serving:0.1.0", "modelTag": "fraud-xgb:q3x7kzd2"},
    "stream": {"image": "ghcr.io/frauddetect/fraudpipeline-flink:0.1.0", "checkpointInterval": "10s"},
}


def minimal_pipeline(namespace: str, name: str) -> dict:
    import copy

    return {
        "apiVersion": spec.API_VERSION,
        "kind": spec.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": copy.deepcopy(MINIMAL_SPEC),
    }


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - "not yet", remembered for the message
            last_error = exc
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)
        interval = min(interval * 1.3, 0.5)


class Cluster:
    """Admin access to the dev API server (plain HTTP calls, independent of the operator's code)."""

    def __init__(self, kube_env: dict):
        from fp_devtools.kube import client

        self.env = kube_env
        self.http = client(kube_env["server"], kube_env["kubeconfig"])

    @staticmethod
    def path(
        api_version: str,
        kind: str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        from fp_operator.kinds import KINDS

        plural = KINDS[kind].plural if kind in KINDS else _OTHER_PLURALS[kind]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        out = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
        return out + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")

    def check(self, resp, ok=(200, 201)) -> dict:
        if resp.status_code not in ok:
            raise RuntimeError(f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text[:800]}")
        return resp.json() if resp.content else {}

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        r = self.http.get(self.path(api_version, kind, namespace, name))
        return None if r.status_code == 404 else self.check(r)

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict]:
        params = {"labelSelector": selector} if selector else {}
        return self.check(self.http.get(self.path(api_version, kind, namespace), params=params)).get("items", [])

    def create(self, obj: dict, ok=(201,)):
        m = obj["metadata"]
        return self.http.post(self.path(obj["apiVersion"], obj["kind"], m.get("namespace")), json=obj)

    def apply(self, obj: dict, manager: str = "fraudpipe-test") -> dict:
        m = obj["metadata"]
        r = self.http.patch(
            self.path(obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"]),
            params={"fieldManager": manager, "force": "true"},
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        return self.check(r)

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: dict,
        subresource: str | None = None,
        manager: str = "fraudpipe-test",
    ) -> dict:
        r = self.http.patch(
            self.path(api_version, kind, namespace, name, subresource),
            content=json.dumps(patch),
            params={"fieldManager": manager},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        return self.check(r)

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        r = self.http.delete(self.path(api_version, kind, namespace, name))
        if r.status_code == 404:
            return False
        self.check(r, ok=(200, 202))
        return True

    def ensure_namespace(self, name: str) -> None:
        r = self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        if r.status_code not in (201, 409):
            self.check(r)

    def install_crd(self) -> None:
        """Our CRD as checked in (the session may have started before it changed)."""
        doc = yaml.safe_load((repo_root() / "crds" / CRD_FILE_NAME).read_text())
        self.apply(doc, manager="fraudpipe-dev")
        wait_for(
            lambda: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (
                    self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, doc["metadata"]["name"]) or {}
                )
                .get("status", {})
                .get("conditions", [])
            ),
            30,
            "the FraudPipeline CRD to be Established",
        )

    def pipeline(self, namespace: str, name: str) -> dict | None:
        return self.get(spec.API_VERSION, spec.KIND, namespace, name)


@dataclass
class Identity:
    kubeconfig: Path
    username: str
    rbac: str  # "chart ClusterRole" or why admin is used


def operator_identity(cluster: Cluster, helm: str | None, workdir: Path) -> Identity:
    """A ServiceAccount bound to the chart's ClusterRole, and a kubeconfig holding its token."""
    if not helm or not Path(helm).exists():
        return Identity(Path(cluster.env["kubeconfig"]), "admin", "admin (helm not found to render the chart's RBAC)")
    chart = repo_root() / "charts" / "fraudpipeline"
    shown = [
        "templates/rbac/serviceaccount.yaml",
        "templates/rbac/clusterrole.yaml",
        "templates/rbac/clusterrolebinding.yaml",
        "templates/rbac/flink-job-clusterrole.yaml",
        "templates/rbac/leader-election-role.yaml",
        "templates/rbac/leader-election-rolebinding.yaml",
    ]
    # Leader election on, so that the Lease's Role is there too (the Lease is named like the account).
    argv = [
        helm,
        "template",
        "fraudpipeline",
        str(chart),
        "--namespace",
        OPERATOR_NAMESPACE,
        "--set",
        f"fullnameOverride={OPERATOR_ACCOUNT}",
        "--set",
        "flinkJob.clusterRoleName=fraudpipeline-flink-job",
        "--set",
        "operator.leaderElection.enabled=true",
    ]
    for s in shown:
        argv += ["--show-only", s]
    rendered = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    cluster.ensure_namespace(OPERATOR_NAMESPACE)
    for doc in yaml.safe_load_all(rendered):
        if doc:
            cluster.apply(doc, manager="helm")
    r = cluster.http.post(
        cluster.path("v1", "ServiceAccount", OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, "token"),
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 86400}},
    )
    token = cluster.check(r)["status"]["token"]
    admin = yaml.safe_load(Path(cluster.env["kubeconfig"]).read_text())
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "operator",
        "clusters": [{"name": "dev", "cluster": {"server": cluster.env["server"], "certificate-authority-data": ca}}],
        "users": [{"name": OPERATOR_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "dev", "user": OPERATOR_ACCOUNT}}],
    }
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    base64.b64decode(ca)  # fail here, not in the operator, if the admin kubeconfig is odd
    return Identity(path, f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}", "chart ClusterRole")


class OperatorProcess:
    """`python -m fp_operator run` (the image's entry point) in a subprocess, with its own log.
    With `leader_election`, it reconciles only while holding the Lease `OPERATOR_ACCOUNT` in
    `OPERATOR_NAMESPACE` (as the chart runs several replicas)."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        env: dict[str, str] | None = None,
        workers: int = 4,
        leader_election: bool = False,
    ):
        from fp_devtools.process import free_port

        self.kubeconfig, self.log, self.extra_env, self.workers = kubeconfig, log, env or {}, workers
        self.leader_election = leader_election
        self.liveness_port, self.metrics_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 60) -> None:
        import httpx

        self.log.parent.mkdir(parents=True, exist_ok=True)
        # As in the image (operator/Dockerfile): one glibc arena pool instead of one per thread.
        env = {"MALLOC_ARENA_MAX": "2", **os.environ, **self.extra_env}
        env.pop("KUBECONFIG", None)
        argv = [
            sys.executable,
            "-m",
            "fp_operator",
            "run",
            "--all-namespaces",
            "--kubeconfig",
            str(self.kubeconfig),
            "--liveness-port",
            str(self.liveness_port),
            "--metrics-port",
            str(self.metrics_port),
            "--workers",
            str(self.workers),
        ]
        if self.leader_election:
            argv += [
                "--leader-election",
                "--leader-election-namespace",
                OPERATOR_NAMESPACE,
                "--leader-election-id",
                OPERATOR_ACCOUNT,
            ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=repo_root()
            )

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.proc.returncode}:\n{self.tail()}")
            return httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1).status_code == 200

        deadline = time.monotonic() + timeout
        while True:
            try:
                if healthy():
                    return
            except RuntimeError:
                raise
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            if time.monotonic() > deadline:
                tail = self.tail()
                self.stop()  # no orphan left running when the caller gives up
                raise TimeoutError(f"operator not live after {timeout} s:\n{tail}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost node would: no chance to release the Lease."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def probes(self) -> dict:
        """kopf's liveness answer: our probes (`queue`, `leader`) by id."""
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2).json()

    def tail(self, lines: int = 60) -> str:
        from fp_devtools.process import log_tail

        return log_tail(self.log, lines)

    def metrics(self) -> str:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text


class AuditLog:
    """The API server's audit log (writes only, Metadata level), read from a byte offset."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def offset(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def events(self, since: int = 0, user: str | None = None, verbs: set[str] | None = None) -> list[dict]:
        out = []
        with open(self.path, "rb") as f:
            f.seek(since)
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if e.get("stage") != "ResponseComplete":
                    continue
                if user and e.get("user", {}).get("username") != user:
                    continue
                if verbs and e.get("verb") not in verbs:
                    continue
                out.append(e)
        return out

    def writes(self, user: str, since: int = 0) -> list[dict]:
        return self.events(since, user, WRITE_VERBS)


def describe(events: list[dict]) -> list[str]:
    """One line per audit event: verb resource[/subresource] namespace/name -> code."""
    out = []
    for e in events:
        ref = e.get("objectRef", {})
        res = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out.append(
            f"{e['verb']} {res} {ref.get('namespace', '')}/{ref.get('name', '')} -> "
            f"{e.get('responseStatus', {}).get('code')}"
        )
    return out
