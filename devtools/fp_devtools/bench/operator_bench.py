"""`fraudpipe bench operator`: how fast and how quiet the operator is against a real API server.

Measured from the API server's audit log (server-side timestamps, by user), the operator's own
/metrics and its process (psutil), with the operator running as `fraudpipe operator run` under its
chart ServiceAccount:
- apply-to-children: from the API server receiving a new FraudPipeline to the last of its
  children written by the operator (one pipeline at a time; p50/p99);
- reconcile-100: from the first of N pipelines created back to back to the last one having all
  its children and a written status;
- requests-per-reconcile: API requests the operator makes to bring one new pipeline up;
- idle: operator writes per minute once everything has settled;
- rss: the operator process's peak resident memory over the whole run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

WRITE_RESOURCES = {"KafkaTopic": "kafkatopics", "KafkaBridge": "kafkabridges", "FlinkDeployment": "flinkdeployments",
                   "Deployment": "deployments", "Service": "services", "ServiceAccount": "serviceaccounts",
                   "ConfigMap": "configmaps", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
                   "PodDisruptionBudget": "poddisruptionbudgets", "RoleBinding": "rolebindings",
                   "ServiceMonitor": "servicemonitors", "PodMonitor": "podmonitors",
                   "PrometheusRule": "prometheusrules"}


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = q / 100 * (len(ordered) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _machine(kube_env: dict) -> dict:
    from fp_devtools.machine import machine_info

    return {**machine_info(("kopf", "kubernetes")), "kube_apiserver": kube_env.get("version"),
            "note": "API server, etcd and controller-manager share the machine"}


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.every, self.peak, self.last = every, 0, 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.last = self.proc.memory_info().rss
                self.peak = max(self.peak, self.last)
            except Exception:  # noqa: BLE001 - process gone
                return
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _expected_writes(doc_ns: str, name: str, caps) -> set[tuple[str, str, str]]:
    """(resource, namespace, name) of every child the operator must write for a minimal pipeline."""
    from fraudpipeline.spec import parse_pipeline
    from fp_operator.builders import build_children
    from fp_devtools.bench.operator_harness import minimal_pipeline

    doc = minimal_pipeline(doc_ns, name)
    doc["metadata"]["uid"] = "bench"
    return {(WRITE_RESOURCES[c["kind"]], c["metadata"]["namespace"], c["metadata"]["name"])
            for c in build_children(parse_pipeline(doc), caps)}


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_benchmark(kube_env: dict, helm: str | None, *, pipelines: int, samples: int, idle_seconds: float,
                  workers: int, progress) -> dict:
    from fp_operator.builders import Capabilities
    from fp_devtools.bench.operator_harness import AuditLog, Cluster, OperatorProcess, describe, \
        minimal_pipeline, operator_identity, wait_for

    cluster = Cluster(kube_env)
    cluster.install_crd()
    work = Path(tempfile.mkdtemp(prefix="fp-bench-operator-"))
    ident = operator_identity(cluster, helm, work)
    audit = AuditLog(kube_env["audit_log"])
    caps = Capabilities(kafka_api_version="v1", flink=True, monitoring=frozenset())
    op = OperatorProcess(ident.kubeconfig, work / "operator.log", workers=workers)
    namespaces: list[str] = []
    results: list[dict] = []
    rss = None

    def writes_for(since: int) -> list[dict]:
        return audit.writes(ident.username, since)

    def done_at(expected: set, since: int) -> float | None:
        seen = {}
        for e in writes_for(since):
            ref = e.get("objectRef", {})
            key = (ref.get("resource"), ref.get("namespace"), ref.get("name"))
            if key in expected and not ref.get("subresource"):
                seen[key] = max(seen.get(key, 0.0), _ts(e["stageTimestamp"]))
        return max(seen.values()) if len(seen) == len(expected) else None

    try:
        op.start()
        rss = RssSampler(op.pid)
        rss.start()
        # ---------------------------------------------------------------- apply-to-children
        ns = f"bench-latency-{uuid.uuid4().hex[:5]}"
        cluster.ensure_namespace(ns)
        namespaces.append(ns)
        latencies = []
        task = progress(f"apply-to-children ({samples} pipelines, one at a time)", samples)
        for i in range(samples):
            name = f"lat-{i:03d}"
            since = audit.offset()
            cluster.check(cluster.create(minimal_pipeline(ns, name)))
            created = next(_ts(e["requestReceivedTimestamp"]) for e in audit.events(since, verbs={"create"})
                           if e["objectRef"].get("resource") == "fraudpipelines" and e["objectRef"].get("name") == name)
            expected = _expected_writes(ns, name, caps)
            finished = wait_for(lambda: done_at(expected, since), 30, f"children of {name}")
            latencies.append((finished - created) * 1000)
            task()
        results.append({"name": "apply-to-children", "p50_ms": round(statistics.median(latencies), 1),
                        "p99_ms": round(_percentile(latencies, 99), 1), "max_ms": round(max(latencies), 1),
                        "samples": samples, "children_per_pipeline": len(expected), "target_p99_ms": 1000})

        # ---------------------------------------------------------------- reconcile-N
        ns = f"bench-scale-{uuid.uuid4().hex[:5]}"
        cluster.ensure_namespace(ns)
        namespaces.append(ns)
        metrics_before = op.metrics()
        since = audit.offset()
        names = [f"scale-{i:03d}" for i in range(pipelines)]
        task = progress(f"reconcile-{pipelines} (created back to back)", pipelines)
        for name in names:
            cluster.check(cluster.create(minimal_pipeline(ns, name)))
        creates = {e["objectRef"]["name"]: _ts(e["requestReceivedTimestamp"])
                   for e in audit.events(since, verbs={"create"}) if e["objectRef"].get("resource") == "fraudpipelines"}
        start = min(creates.values())
        expected = {n: _expected_writes(ns, n, caps) | {("fraudpipelines", ns, n, "status")} for n in names}
        finished: dict[str, float] = {}

        def all_done():
            per: dict[tuple, float] = {}
            for e in writes_for(since):
                ref = e.get("objectRef", {})
                key = (ref.get("resource"), ref.get("namespace"), ref.get("name"))
                if ref.get("subresource") == "status":
                    key = key + ("status",)
                per[key] = max(per.get(key, 0.0), _ts(e["stageTimestamp"]))
            for n in names:
                if n not in finished and all(k in per for k in expected[n]):
                    finished[n] = max(per[k] for k in expected[n])
                    task()
            return len(finished) == len(names)

        wait_for(all_done, 300, f"{pipelines} pipelines reconciled", interval=0.2)
        seconds = max(finished.values()) - start
        results.append({"name": f"reconcile-{pipelines}", "seconds": round(seconds, 2), "pipelines": pipelines,
                        "children": sum(len(v) - 1 for v in expected.values()), "target_seconds": 60})

        # settle, then count what bringing N pipelines up cost
        def quiet():
            events = writes_for(since)
            last = max((_ts(e["stageTimestamp"]) for e in events), default=0)
            return time.time() - last >= 3
        wait_for(quiet, 120, "3 s without operator writes", interval=0.5)
        metrics_after = op.metrics()
        writes = writes_for(since)
        kopf_writes = [e for e in writes if e.get("userAgent", "").startswith("kopf")]
        reconciler_requests = (_metric(metrics_after, "fraudpipeline_operator_api_requests_total")
                               - _metric(metrics_before, "fraudpipeline_operator_api_requests_total"))
        passes = (_metric(metrics_after, "fraudpipeline_operator_reconciles_total")
                  - _metric(metrics_before, "fraudpipeline_operator_reconciles_total"))
        per_pipeline = (reconciler_requests + len(kopf_writes)) / pipelines
        results.append({"name": "requests-per-reconcile", "value": round(per_pipeline, 2),
                        "unit": "API requests to bring one new pipeline up (children, status, events, kopf's finalizer)",
                        "writes_per_pipeline": round(len(writes) / pipelines, 2),
                        "reconcile_passes_per_pipeline": round(passes / pipelines, 2),
                        "requests_per_pass": round(reconciler_requests / passes, 2) if passes else None})

        # ---------------------------------------------------------------- idle
        task = progress(f"idle ({idle_seconds:.0f} s with {pipelines + samples} pipelines)", int(idle_seconds))
        idle_from = audit.offset()
        metrics_idle = op.metrics()
        t0 = time.monotonic()
        while time.monotonic() - t0 < idle_seconds:
            time.sleep(1)
            task()
        elapsed = time.monotonic() - t0
        idle_writes = writes_for(idle_from)
        idle_requests = (_metric(op.metrics(), "fraudpipeline_operator_api_requests_total")
                         - _metric(metrics_idle, "fraudpipeline_operator_api_requests_total"))
        results.append({"name": "idle", "writes_per_min": round(len(idle_writes) / elapsed * 60, 2),
                        "requests_per_min": round(idle_requests / elapsed * 60, 2), "seconds": round(elapsed, 1),
                        "writes": describe(idle_writes)[:20], "target_writes_per_min": 0})
        results.append({"name": "rss", "peak_mb": round(rss.peak / 2 ** 20, 1), "last_mb": round(rss.last / 2 ** 20, 1),
                        "objects_watched": pipelines + samples + sum(len(v) - 1 for v in expected.values())
                        + samples * len(_expected_writes("x", "y", caps)), "target_peak_mb": 150})
    finally:
        task = progress("cleaning up", len(namespaces))
        for ns in namespaces:
            cluster.delete("v1", "Namespace", None, ns)
        for ns in namespaces:
            try:
                wait_for(lambda ns=ns: cluster.get("v1", "Namespace", None, ns) is None, 300, f"namespace {ns} deleted")
            except TimeoutError as exc:
                print(f"warning: {exc}", file=sys.stderr)
            task()
        if rss is not None:
            rss.stop()
        op.stop()
    return {"benchmark": "operator", "machine": _machine(kube_env), "results": results,
            "setup": {"operator_identity": ident.username, "rbac": ident.rbac, "workers": workers,
                      "operator_log": str(work / "operator.log")}}


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON result on stdout.")] = False,
    pipelines: Annotated[int, typer.Option(help="Pipelines created back to back for reconcile-N.")] = 100,
    samples: Annotated[int, typer.Option(help="Pipelines timed one at a time for apply-to-children.")] = 20,
    idle_seconds: Annotated[float, typer.Option(help="Length of the idle window.")] = 60.0,
    workers: Annotated[int, typer.Option(help="Operator reconcile workers.")] = 4,
    dev_env: Annotated[Path | None, typer.Option(help="env.json of servers started with `fraudpipe dev up` "
                                                      "(default: $FRAUDPIPE_DEV_ENV, else a kube control plane "
                                                      "is started for the run and stopped after).")] = None,
) -> None:
    """Benchmark the operator against a real kube-apiserver: latency, scale, requests, idle writes, RSS."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fp_devtools import servers

    console = Console(stderr=True)
    env_file = dev_env or (Path(os.environ["FRAUDPIPE_DEV_ENV"]) if os.environ.get("FRAUDPIPE_DEV_ENV") else None)
    started_dir = None
    if env_file:
        env = json.loads(env_file.read_text())
        if "kube" not in env:
            raise typer.BadParameter(f"{env_file} has no kube server: run `fraudpipe dev up --with kube`")
    else:
        started_dir = Path(tempfile.mkdtemp(prefix="fp-bench-kube-"))
        with console.status("starting kube-apiserver, etcd and kube-controller-manager ..."):
            env = servers.up(["kube"], started_dir)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, disable=False) as bar:
            def progress(description: str, total: int):
                task = bar.add_task(description, total=total)
                return lambda: bar.advance(task)

            result = run_benchmark(env["kube"], (env.get("tools") or {}).get("helm"), pipelines=pipelines,
                                   samples=samples, idle_seconds=idle_seconds, workers=workers, progress=progress)
    finally:
        if started_dir is not None:
            servers.down(started_dir)
    if not as_json:
        for r in result["results"]:
            console.print(f"[bold]{r['name']}[/bold]: " + ", ".join(f"{k}={v}" for k, v in r.items()
                                                                    if k not in ("name", "writes")))
    print(json.dumps(result, indent=2))
