"""The chart on a real API server (kube-apiserver + etcd + kube-controller-manager of `fraudpipe dev`,
with the upstream Strimzi, Flink operator and Prometheus operator CRDs):

- every `ci/*-values.yaml` scenario passes `helm lint --strict` and its rendering (CRD included) is
  accepted by a server-side dry run;
- `helm install`, `helm upgrade` to changed values and `helm uninstall`: the operator, run with the
  release's own ServiceAccount token (and the Deployment's environment), reconciles an example to
  Ready in between; the uninstall's pre-delete hook waits for a pipeline being deleted; nothing of
  the release is left but the CRD (Helm never deletes `crds/`);
- namespaced mode: the operator with `--namespace` and the chart's Roles leaves pipelines in other
  namespaces alone, and cannot even read them.

No kubelet runs: the test plays it for the model's pods and for the hook's pod (it runs the hook's
command itself, with the hook's arguments and account, then reports the pod Succeeded), as the
operator tests play Strimzi and the Flink operator.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from helpers import (
    condition,
    create,
    flink_running,
    model_pods_ready,
    now,
    pipeline_doc,
    topics_ready,
    wait_status,
)

from fp_devtools.bench.operator_harness import AuditLog, Cluster, describe, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "fraudpipeline"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))


@pytest.fixture(scope="module")
def cluster(upstream_crds, kube_gc) -> Cluster:
    c = Cluster(upstream_crds)
    c.install_crd()
    return c


@pytest.fixture(scope="module")
def helm(cluster) -> str:
    from fp_devtools.builds import helm_binary

    return str(helm_binary())  # built with the control plane (`fraudpipe dev prepare --with kube`)


def _helm(helm: str, cluster: Cluster, *args: str, check: bool = True, timeout: float = 300):
    r = subprocess.run(
        [helm, *args, "--kubeconfig", cluster.env["kubeconfig"]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HELM_CACHE_HOME": "/tmp/fp-helm-cache", "HELM_CONFIG_HOME": "/tmp/fp-helm-config"},
    )
    if check:
        assert r.returncode == 0, f"helm {' '.join(args)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


_PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Service": "services",
    "Deployment": "deployments",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ServiceMonitor": "servicemonitors",
    "Job": "jobs",
    "CustomResourceDefinition": "customresourcedefinitions",
}


def _path(doc: dict) -> str:
    api, kind, m = doc["apiVersion"], doc["kind"], doc["metadata"]
    base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
    ns = f"/namespaces/{m['namespace']}" if m.get("namespace") else ""
    return f"{base}{ns}/{_PLURALS[kind]}/{m['name']}"


def _dry_run_apply(cluster: Cluster, doc: dict) -> None:
    r = cluster.http.patch(
        _path(doc),
        params={"fieldManager": "helm", "force": "true", "dryRun": "All"},
        content=json.dumps(doc),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert r.status_code in (200, 201), f"{doc['kind']} {doc['metadata']['name']}: {r.status_code} {r.text[:600]}"


# ------------------------------------------------------------------------------------ scenarios


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_lints_strictly(helm, cluster, scenario):
    _helm(helm, cluster, "lint", "--strict", str(CHART), "-f", str(scenario))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_is_accepted_by_a_server_side_dry_run(helm, cluster, scenario):
    for ns in ("fraudpipeline-system", "fraud", "kafka"):
        cluster.ensure_namespace(ns)
    out = _helm(
        helm,
        cluster,
        "template",
        "fraudpipeline",
        str(CHART),
        "-n",
        "fraudpipeline-system",
        "--include-crds",
        "-f",
        str(scenario),
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert {"Deployment", "ServiceAccount", "CustomResourceDefinition"} <= {d["kind"] for d in docs}
    for doc in docs:
        _dry_run_apply(cluster, doc)


# ------------------------------------------------------------------------------------ lifecycle


def _token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    r = cluster.http.post(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}},
    )
    token = cluster.check(r)["status"]["token"]
    admin = yaml.safe_load(Path(cluster.env["kubeconfig"]).read_text())
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [
                    {"name": "dev", "cluster": {"server": cluster.env["server"], "certificate-authority-data": ca}}
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "dev", "user": account}}],
            }
        )
    )
    path.chmod(0o600)
    return path


class Operator:
    """`python -m fp_operator <args>` as the chart's Deployment runs it: its arguments (ports
    replaced by free ones) and its environment, with a ServiceAccount token kubeconfig."""

    def __init__(self, deployment: dict, kubeconfig: Path, log: Path, namespace: str):
        from fp_devtools.process import free_port

        c = deployment["spec"]["template"]["spec"]["containers"][0]
        self.liveness, metrics = free_port(), free_port()
        args = [a for a in c["args"] if not a.startswith(("--liveness-port", "--metrics-port"))]
        self.argv = [
            sys.executable,
            "-m",
            "fp_operator",
            *args,
            "--kubeconfig",
            str(kubeconfig),
            f"--liveness-port={self.liveness}",
            f"--metrics-port={metrics}",
        ]
        env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
        env["POD_NAMESPACE"] = namespace
        self.env = {**os.environ, **env, "MALLOC_ARENA_MAX": "2"}
        self.env.pop("KUBECONFIG", None)
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        import httpx

        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO,
            stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

        def live():
            assert self.proc.poll() is None, f"operator exited:\n{self.tail()}"
            return httpx.get(f"http://127.0.0.1:{self.liveness}/healthz", timeout=1).status_code == 200

        wait_for(live, 60, "the operator to be live")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self) -> str:
        from fp_devtools.process import log_tail

        return log_tail(self.log, 60)


def _release_objects(cluster: Cluster, release: str, namespaces: list[str]) -> list[str]:
    """Every object labelled with the release, cluster-wide kinds and the given namespaces."""
    sel = f"app.kubernetes.io/instance={release}"
    found = []
    for api, kind in (
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ):
        found += [f"{kind}/{o['metadata']['name']}" for o in cluster.list(api, kind, None, sel)]
    for ns in namespaces:
        for api, kind, plural in (
            ("v1", "ServiceAccount", "serviceaccounts"),
            ("v1", "Service", "services"),
            ("apps/v1", "Deployment", "deployments"),
            ("batch/v1", "Job", "jobs"),
            ("rbac.authorization.k8s.io/v1", "Role", "roles"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
            ("v1", "Secret", "secrets"),
        ):
            base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
            items = cluster.check(
                cluster.http.get(f"{base}/namespaces/{ns}/{plural}", params={"labelSelector": sel})
            ).get("items", [])
            found += [f"{kind}/{ns}/{o['metadata']['name']}" for o in items]
    return found


def _make_ready(cluster: Cluster, ns: str, name: str) -> dict:
    wait_for(lambda: topics_ready(cluster, ns, ns, name) >= 4, 30, "the pipeline's KafkaTopics")
    wait_for(
        lambda: cluster.get("flink.apache.org/v1beta1", "FlinkDeployment", ns, f"{name}-stream"),
        30,
        "the FlinkDeployment",
    )
    flink_running(cluster, ns, name)
    model_pods_ready(cluster, ns, name, timeout=60)
    return wait_status(
        cluster,
        ns,
        name,
        lambda fp: condition(fp, "Ready").get("status") == "True",
        "the pipeline to be Ready",
        timeout=90,
    )


def _play_kubelet_for_the_hook(cluster: Cluster, ns: str, job: str, kubeconfig: Path, done: dict) -> None:
    """Run the hook pod's command as its container would, then report the pod's outcome."""
    try:
        pod = wait_for(
            lambda: (cluster.list("v1", "Pod", ns, f"job-name={job}") or [None])[0], 60, f"the pod of hook Job {job}"
        )
        c = pod["spec"]["containers"][0]
        assert pod["spec"]["serviceAccountName"].endswith("fraudpipeline")
        r = subprocess.run(
            [sys.executable, "-m", "fp_operator", *c["args"], "--kubeconfig", str(kubeconfig)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        done["hook_output"] = r.stderr
        done["pipelines_left_when_hook_ended"] = done["count_pipelines"]()
        t = now()
        code = r.returncode
        cluster.merge_patch(
            "v1",
            "Pod",
            ns,
            pod["metadata"]["name"],
            {
                "status": {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "conditions": [
                        {"type": "Ready", "status": "False", "lastTransitionTime": t, "reason": "PodCompleted"}
                    ],
                    "containerStatuses": [
                        {
                            "name": c["name"],
                            "ready": False,
                            "restartCount": 0,
                            "image": c["image"],
                            "imageID": "",
                            "started": False,
                            "state": {
                                "terminated": {
                                    "exitCode": code,
                                    "reason": "Completed" if code == 0 else "Error",
                                    "startedAt": t,
                                    "finishedAt": t,
                                }
                            },
                        }
                    ],
                }
            },
            subresource="status",
            manager="kubelet",
        )
    except Exception as exc:  # noqa: BLE001 - reported by the test
        done["error"] = exc


def test_install_upgrade_uninstall_with_the_operator_reconciling_in_between(helm, cluster, tmp_path):
    release = f"fpit{uuid.uuid4().hex[:6]}"
    rns = f"{release}-system"
    fullname = f"{release}-fraudpipeline"
    _helm(
        helm,
        cluster,
        "install",
        release,
        str(CHART),
        "-n",
        rns,
        "--create-namespace",
        "--set",
        "operator.image.tag=it",
        "--set",
        "operator.uninstall.timeoutSeconds=60",
    )
    dep = cluster.get("apps/v1", "Deployment", rns, fullname)
    assert dep and dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    installed = _release_objects(cluster, release, [rns])
    assert f"ClusterRole/{fullname}" in installed and f"ClusterRole/{fullname}-flink-job" in installed

    op = Operator(
        dep, _token_kubeconfig(cluster, rns, fullname, tmp_path / "sa.kubeconfig"), tmp_path / "operator.log", rns
    )
    op.start()
    pns = f"{release}-fraud"
    cluster.ensure_namespace(pns)
    try:
        create(cluster, pipeline_doc(pns))
        fp = _make_ready(cluster, pns, "payments")
        assert fp["status"]["phase"] == "Ready"

        # helm upgrade to changed values: the Deployment follows, the release is at revision 2.
        _helm(
            helm,
            cluster,
            "upgrade",
            release,
            str(CHART),
            "-n",
            rns,
            "--reuse-values",
            "--set",
            "operator.workers=2",
            "--set",
            "operator.resources.limits.memory=300Mi",
        )
        dep = cluster.get("apps/v1", "Deployment", rns, fullname)
        c = dep["spec"]["template"]["spec"]["containers"][0]
        assert {e["name"]: e.get("value") for e in c["env"]}["FRAUDPIPE_OPERATOR_WORKERS"] == "2"
        assert c["resources"]["limits"]["memory"] == "300Mi"
        status = json.loads(_helm(helm, cluster, "status", release, "-n", rns, "-o", "json").stdout)
        assert status["version"] == 2 and status["info"]["status"] == "deployed"

        # The operator restarted on the upgraded Deployment keeps the pipeline Ready.
        op.stop()
        op = Operator(dep, op.argv[op.argv.index("--kubeconfig") + 1], tmp_path / "operator.log", rns)
        op.start()
        wait_status(
            cluster,
            pns,
            "payments",
            lambda f: condition(f, "Ready").get("status") == "True",
            "the pipeline to stay Ready after the upgrade",
            timeout=60,
        )

        # Delete the pipeline and uninstall at once: the pre-delete hook holds the uninstall until the
        # operator (still running, its RBAC still there) has run the pipeline's finalizer.
        cluster.delete("frauddetect.dev/v1alpha1", "FraudPipeline", pns, "payments")
        done: dict = {"count_pipelines": lambda: len(cluster.list("frauddetect.dev/v1alpha1", "FraudPipeline", pns))}
        kubelet = threading.Thread(
            target=_play_kubelet_for_the_hook,
            daemon=True,
            args=(
                cluster,
                rns,
                f"{fullname}-wait-for-deletions",
                Path(op.argv[op.argv.index("--kubeconfig") + 1]),
                done,
            ),
        )
        kubelet.start()
        _helm(helm, cluster, "uninstall", release, "-n", rns, "--timeout", "180s")
        kubelet.join(5)
        assert "error" not in done, done.get("error")
        assert done["pipelines_left_when_hook_ended"] == 0, done.get("hook_output")
    finally:
        op.stop()

    left = _release_objects(cluster, release, [rns])
    assert not left, f"left behind by helm uninstall: {left}"
    crd = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "fraudpipelines.frauddetect.dev")
    assert crd is not None, "the CRD must stay (Helm leaves crds/ alone)"
    cluster.delete("v1", "Namespace", None, pns)


def test_namespaced_mode_leaves_other_namespaces_alone(helm, cluster, tmp_path):
    release = f"fpns{uuid.uuid4().hex[:6]}"
    rns, watched, other = f"{release}-system", f"{release}-watched", f"{release}-other"
    fullname = f"{release}-fraudpipeline"
    for ns in (watched, other):
        cluster.ensure_namespace(ns)
    _helm(
        helm,
        cluster,
        "install",
        release,
        str(CHART),
        "-n",
        rns,
        "--create-namespace",
        "--set",
        f"operator.watchNamespaces={{{watched}}}",
        "--set",
        "operator.uninstall.waitForPipelineDeletion=false",
    )
    assert not [n for n in _release_objects(cluster, release, [rns]) if n == f"ClusterRole/{fullname}"]
    dep = cluster.get("apps/v1", "Deployment", rns, fullname)
    kubeconfig = _token_kubeconfig(cluster, rns, fullname, tmp_path / "sa.kubeconfig")
    op = Operator(dep, kubeconfig, tmp_path / "operator.log", rns)
    assert f"--namespace={watched}" in op.argv and "--all-namespaces" not in op.argv
    since = AuditLog(cluster.env["audit_log"]).offset()
    op.start()
    try:
        create(cluster, pipeline_doc(other, name="elsewhere"))
        create(cluster, pipeline_doc(watched))
        fp = _make_ready(cluster, watched, "payments")
        assert "frauddetect.dev/finalizer" in fp["metadata"]["finalizers"]
        time.sleep(3)  # the operator had every chance to touch the other one
        # Judged by the API server's audit log of this release's account (other operators of the test
        # session, watching every namespace, may well reconcile the other pipeline).
        user = f"system:serviceaccount:{rns}:{fullname}"
        writes = AuditLog(cluster.env["audit_log"]).writes(user, since)
        elsewhere = [e for e in writes if (e.get("objectRef") or {}).get("namespace") == other]
        assert not elsewhere, f"the namespaced operator wrote outside its namespaces: {describe(elsewhere)}"
        assert [e for e in writes if (e.get("objectRef") or {}).get("namespace") == watched]
        # The release's account cannot even read pipelines outside the watched namespaces.
        from fp_devtools.kube import client

        as_operator = client(cluster.env["server"], str(kubeconfig))
        assert as_operator.get(f"/apis/frauddetect.dev/v1alpha1/namespaces/{other}/fraudpipelines").status_code == 403
        assert as_operator.get(f"/apis/frauddetect.dev/v1alpha1/namespaces/{watched}/fraudpipelines").status_code == 200
        cluster.delete("frauddetect.dev/v1alpha1", "FraudPipeline", watched, "payments")
        wait_for(lambda: cluster.pipeline(watched, "payments") is None, 60, "the watched pipeline's finalizer")
    finally:
        op.stop()
        _helm(helm, cluster, "uninstall", release, "-n", rns, check=False)
        cluster.merge_patch(
            "frauddetect.dev/v1alpha1", "FraudPipeline", other, "elsewhere", {"metadata": {"finalizers": []}}
        )
        for ns in (watched, other):
            cluster.delete("v1", "Namespace", None, ns)


# ------------------------------------------------------------------------------------ CRD upgrades


def _crd_path(name: str) -> str:
    return f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"


def test_the_documented_crd_upgrade_step_brings_an_older_crd_up_to_date(cluster, tmp_path):
    """`helm upgrade` never changes a CRD in `crds/` (Helm installs them once); docs/operator.md gives
    the step that does, `kubectl apply --server-side --force-conflicts -f charts/fraudpipeline/crds/`.
    Played on a copy of the chart's CRD under another group (the real one serves the other tests):
    created as Helm creates it, one version older, then upgraded with exactly that command."""
    kubectl = (cluster.env.get("tools") or {}).get("kubectl") or shutil.which("kubectl")
    assert kubectl, "kubectl is built with the control plane (`fraudpipe dev prepare --with kube`)"
    new = yaml.safe_load(next((CHART / "crds").glob("*.yaml")).read_text())
    group = "upgrade.frauddetect.dev"
    new["spec"]["group"] = group
    new["metadata"]["name"] = f"{new['spec']['names']['plural']}.{group}"
    name = new["metadata"]["name"]
    old = copy.deepcopy(new)
    stream = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["stream"]
    del stream["properties"]["maxParallelism"]["x-kubernetes-validations"]  # what the previous chart had
    created = cluster.http.post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=old, params={"fieldManager": "helm"}
    )
    assert created.status_code == 201, created.text
    try:
        (tmp_path / "crds").mkdir()
        (tmp_path / "crds" / "fraudpipelines.yaml").write_text(yaml.safe_dump(new))
        done = subprocess.run(
            [kubectl, "--kubeconfig", cluster.env["kubeconfig"], "apply", "--server-side", "--force-conflicts"]
            + ["-f", str(tmp_path / "crds")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        live = cluster.check(cluster.http.get(_crd_path(name)))
        live_stream = live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
            "stream"
        ]
        rules = live_stream["properties"]["maxParallelism"].get("x-kubernetes-validations") or []
        assert [r["rule"] for r in rules] == ["self == oldSelf"], rules
    finally:
        cluster.http.delete(_crd_path(name))
