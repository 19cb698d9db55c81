"""A real Kubernetes control plane the envtest way: etcd, kube-apiserver, kube-controller-manager.

No scheduler and no kubelet: objects are stored, validated (CRD schemas, CEL) and garbage
collected, but Pods never run. Binaries come from `KUBEBUILDER_ASSETS` when it names a folder
holding them, else they are built from source once and cached.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import yaml

from fp_devtools import argv, builds, cache
from fp_devtools.certs import make_pki
from fp_devtools.process import ServerFailed, spawn, stopped_on_failure, wait_healthy

FIELD_MANAGER = "fraudpipe-dev"

# Writes only, at Metadata level: enough to count who changed what (the operator's idle-write
# check) without logging every read.
_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "None"},
    ],
}


def binaries() -> dict[str, str | None]:
    """Paths of the control-plane binaries; kube-controller-manager may be None (then GC tests skip)."""
    found: dict[str, str | None] = {}
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and Path(assets, "kube-apiserver").exists() and Path(assets, "etcd").exists():
        for name in ("kube-apiserver", "etcd", "kube-controller-manager", "kubectl"):
            p = Path(assets, name)
            found[name] = str(p) if p.exists() else None
        if found["kube-controller-manager"] is None or found["kubectl"] is None:
            # setup-envtest ships no kube-controller-manager: build it when Go is here.
            try:
                built = builds.kube_binaries()
                for name in ("kube-controller-manager", "kubectl"):
                    found[name] = found[name] or str(built / name)
            except cache.MissingPrerequisite as exc:
                print(
                    f"[fraudpipe dev] KUBEBUILDER_ASSETS has no kube-controller-manager and it cannot be "
                    f"built ({exc}); garbage collection will not run and the tests that need it skip.",
                    file=sys.stderr,
                )
        return found
    built = builds.kube_binaries()
    return {
        "kube-apiserver": str(built / "kube-apiserver"),
        "etcd": str(builds.etcd_binary()),
        "kube-controller-manager": str(built / "kube-controller-manager"),
        "kubectl": str(built / "kubectl"),
    }


def _kubeconfig(server: str, ca: Path, token: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fraudpipe-dev",
        "preferences": {},
        "clusters": [
            {
                "name": "fraudpipe-dev",
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode()},
            }
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [
            {"name": "fraudpipe-dev", "context": {"cluster": "fraudpipe-dev", "user": "admin", "namespace": "default"}}
        ],
    }


def client(server: str, kubeconfig: str):
    """An httpx client authenticated from our own kubeconfig (for the dev tooling itself)."""
    import ssl

    import httpx

    cfg = yaml.safe_load(Path(kubeconfig).read_text())
    ca_pem = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
    ca_file = Path(kubeconfig).with_name("ca.crt")
    if not ca_file.exists():
        ca_file.write_bytes(ca_pem)
    token = cfg["users"][0]["user"]["token"]
    return httpx.Client(
        base_url=server,
        verify=ssl.create_default_context(cafile=str(ca_file)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def crd_files() -> tuple[list[Path], list[str]]:
    """Our CRDs (crds/) and the released upstream ones; also what could not be found, by name."""
    files: list[Path] = []
    missing: list[str] = []
    ours = cache.repo_root() / "crds"
    files += sorted(p for p in ours.glob("*.yaml") if p.is_file())
    upstream = cache.upstream_crds_dir()
    if upstream.is_dir():
        files += sorted(p for p in upstream.rglob("*") if p.suffix in (".yaml", ".yml"))
    else:
        missing.append(
            f"upstream CRDs (Strimzi, Flink operator, Prometheus operator) not found at {upstream}: "
            f"set FRAUDPIPE_UPSTREAM_CRDS to the folder holding them"
        )
    return files, missing


def install_crds(http, files: list[Path], timeout: float = 60) -> list[str]:
    """Server-side apply every CRD in `files`, then wait until each is Established."""
    names = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            name = doc["metadata"]["name"]
            r = http.patch(
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
                params={"fieldManager": FIELD_MANAGER, "force": "true"},
                content=json.dumps(doc),
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
            if r.status_code >= 300:
                raise ServerFailed(f"installing CRD {name} from {f} failed: {r.status_code} {r.text[:500]}")
            names.append(name)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in sorted(pending):
            obj = http.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
            # A CRD just created may show `status: {conditions: null}` before the server fills it in.
            conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
            if conds.get("Established") == "True":
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise ServerFailed(f"CRDs not Established after {timeout} s: {sorted(pending)}")
        if pending:
            time.sleep(0.1)
    return names


def start(state_dir: Path) -> dict:
    bins = binaries()
    home = state_dir / "kube"
    home.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    pki = make_pki(home / "pki")
    token = argv.kube_token()
    (home / "tokens.csv").write_text(f'{token},admin,admin-uid,"system:masters"\n')
    (home / "audit-policy.yaml").write_text(yaml.safe_dump(_AUDIT_POLICY))
    pids: dict[str, int] = {}
    out_logs: dict[str, str] = {}

    with stopped_on_failure() as procs:
        etcd_client, etcd_peer, port, kcm_port = argv.free_ports(4)
        etcd_log = logs / "etcd.log"
        etcd = spawn(
            argv.etcd(bins["etcd"], home / "etcd", etcd_client, etcd_peer),
            etcd_log,
        )
        procs.append(etcd)
        pids["etcd"], out_logs["etcd"] = etcd.pid, str(etcd_log)

        import httpx

        wait_healthy(
            "etcd",
            etcd,
            lambda: httpx.get(f"http://127.0.0.1:{etcd_client}/health", timeout=1).json().get("health") == "true",
            etcd_log,
            timeout=30,
        )

        server = f"https://127.0.0.1:{port}"
        api_log = logs / "kube-apiserver.log"
        api = spawn(
            argv.kube_apiserver(bins["kube-apiserver"], home, pki, etcd_client, port),
            api_log,
        )
        procs.append(api)
        pids["kube-apiserver"], out_logs["kube-apiserver"] = api.pid, str(api_log)

        kubeconfig = home / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(_kubeconfig(server, pki["ca_crt"], token)))
        kubeconfig.chmod(0o600)
        (home / "ca.crt").write_bytes(pki["ca_crt"].read_bytes())
        http = client(server, str(kubeconfig))
        waited = wait_healthy(
            "kube-apiserver", api, lambda: http.get("/readyz").status_code == 200, api_log, timeout=90
        )

        controller_manager = False
        if bins.get("kube-controller-manager"):
            kcm_log = logs / "kube-controller-manager.log"
            kcm = spawn(
                argv.kube_controller_manager(bins["kube-controller-manager"], home, pki, kubeconfig, kcm_port),
                kcm_log,
            )
            procs.append(kcm)
            pids["kube-controller-manager"], out_logs["kube-controller-manager"] = kcm.pid, str(kcm_log)
            wait_healthy(
                "kube-controller-manager",
                kcm,
                lambda: httpx.get(f"https://127.0.0.1:{kcm_port}/healthz", verify=False, timeout=1).status_code == 200,
                kcm_log,
                timeout=60,
            )
            controller_manager = True

        files, missing = crd_files()
        crds = install_crds(http, files)
        for m in missing:
            print(f"[fraudpipe dev] {m}", file=sys.stderr)
    return {
        "kube": {
            "kubeconfig": str(kubeconfig),
            "server": server,
            "version": cache.KUBE_VERSION,
            "controller_manager": controller_manager,
            "audit_log": str(home / "audit.log"),
            "crds": crds,
            "crds_missing": missing,
            "started_in_s": round(waited, 2),
        },
        "pids": pids,
        "logs": out_logs,
        "tools": {"kubectl": bins.get("kubectl")} if bins.get("kubectl") else {},
    }
