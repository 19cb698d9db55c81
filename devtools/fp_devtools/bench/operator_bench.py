"""`fraudpipe bench operator`: how fast and how quiet the operator is against a real API server.

Measured from the API server's audit log (server-side timestamps, by user), the operator's own
/metrics and its process (psutil), with the operator running as `python -m fp_operator run` (the
image's entry point) under its chart ServiceAccount. One stage per figure:
- apply-to-children: from the API server receiving a new FraudPipeline to the last of its
  children written by the operator (one pipeline at a time; p50/p99);
- reconcile-N: from the first of N pipelines created back to back to the last one having all
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

Progress = Callable[[str, int], Callable[[], None]]
Expected = set[tuple[str, ...]]  # (resource, namespace, name[, "status"]) the operator must write


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

    return {
        **machine_info(("kopf",)),
        "kube_apiserver": kube_env.get("version"),
        "note": "API server, etcd and controller-manager share the machine",
    }


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


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Bench:
    """What every stage uses: the cluster, the audit log, the operator process under test."""

    cluster: Any
    audit: Any
    username: str
    op: Any
    progress: Progress
    namespaces: list[str] = field(default_factory=list)

    def namespace(self, prefix: str) -> str:
        ns = f"{prefix}-{uuid.uuid4().hex[:5]}"
        self.cluster.ensure_namespace(ns)
        self.namespaces.append(ns)
        return ns

    def writes(self, since: int) -> list[dict]:
        return self.audit.writes(self.username, since)

    def create_pipeline(self, namespace: str, name: str) -> None:
        from fp_devtools.bench.operator_harness import minimal_pipeline

        self.cluster.check(self.cluster.create(minimal_pipeline(namespace, name)))

    def last_write_of(self, expected: Expected, since: int) -> dict[tuple, float]:
        """When each expected object was last written (server time), from the audit log."""
        seen: dict[tuple, float] = {}
        for e in self.writes(since):
            ref = e.get("objectRef", {})
            key: tuple = (ref.get("resource"), ref.get("namespace"), ref.get("name"))
            if ref.get("subresource") == "status":
                key += ("status",)
            elif ref.get("subresource"):
                continue
            if key in expected:
                seen[key] = max(seen.get(key, 0.0), _ts(e["stageTimestamp"]))
        return seen


def expected_writes(namespace: str, name: str, *, status: bool = False) -> Expected:
    """Every child the operator must write for a minimal pipeline (and its status)."""
    from fp_devtools.bench.operator_harness import minimal_pipeline
    from fp_operator.builders import Capabilities, build_children
    from fp_operator.kinds import CHILD_KINDS, MONITORING_KINDS
    from fraudpipeline.spec import parse_pipeline

    doc = minimal_pipeline(namespace, name)
    doc["metadata"]["uid"] = "bench"
    caps = Capabilities().without(*MONITORING_KINDS)  # a minimal pipeline has no monitoring
    out: Expected = {
        (CHILD_KINDS[c["kind"]].plural, c["metadata"]["namespace"], c["metadata"]["name"])
        for c in build_children(parse_pipeline(doc), caps)
    }
    return out | ({("fraudpipelines", namespace, name, "status")} if status else set())


# ------------------------------------------------------------------------------------------ stages


def apply_to_children(b: Bench, samples: int) -> dict:
    """One pipeline at a time: from its creation to the last of its children written."""
    from fp_devtools.bench.operator_harness import wait_for

    ns = b.namespace("bench-latency")
    latencies = []
    task = b.progress(f"apply-to-children ({samples} pipelines, one at a time)", samples)
    expected: Expected = set()
    for i in range(samples):
        name = f"lat-{i:03d}"
        since = b.audit.offset()
        b.create_pipeline(ns, name)
        created = next(
            _ts(e["requestReceivedTimestamp"])
            for e in b.audit.events(since, verbs={"create"})
            if e["objectRef"].get("resource") == "fraudpipelines" and e["objectRef"].get("name") == name
        )
        expected = expected_writes(ns, name)

        def done(expected: Expected = expected, since: int = since) -> float | None:
            seen = b.last_write_of(expected, since)
            return max(seen.values()) if len(seen) == len(expected) else None

        latencies.append((wait_for(done, 30, f"children of {name}") - created) * 1000)
        task()
    return {
        "name": "apply-to-children",
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "samples": samples,
        "children_per_pipeline": len(expected),
        "target_p99_ms": 1000,
    }


def reconcile_many(b: Bench, pipelines: int) -> tuple[dict, int]:
    """N pipelines created back to back, until every child and status is written; returns the
    result and the audit offset it started from."""
    from fp_devtools.bench.operator_harness import wait_for

    ns = b.namespace("bench-scale")
    since = b.audit.offset()
    names = [f"scale-{i:03d}" for i in range(pipelines)]
    task = b.progress(f"reconcile-{pipelines} (created back to back)", pipelines)
    for name in names:
        b.create_pipeline(ns, name)
    creates = [
        _ts(e["requestReceivedTimestamp"])
        for e in b.audit.events(since, verbs={"create"})
        if e["objectRef"].get("resource") == "fraudpipelines"
    ]
    expected = {n: expected_writes(ns, n, status=True) for n in names}
    finished: dict[str, float] = {}

    def all_done() -> bool:
        seen = b.last_write_of(set().union(*expected.values()), since)
        for n in names:
            if n not in finished and expected[n] <= seen.keys():
                finished[n] = max(seen[k] for k in expected[n])
                task()
        return len(finished) == len(names)

    wait_for(all_done, 300, f"{pipelines} pipelines reconciled", interval=0.2)
    return {
        "name": f"reconcile-{pipelines}",
        "seconds": round(max(finished.values()) - min(creates), 2),
        "pipelines": pipelines,
        "children": sum(len(v) - 1 for v in expected.values()),
        "target_seconds": 60,
    }, since


def requests_per_reconcile(b: Bench, pipelines: int, since: int, metrics_before: str) -> dict:
    """Once the N pipelines have settled: what bringing each one up cost in API requests."""
    from fp_devtools.bench.operator_harness import wait_for

    def quiet() -> bool:
        last = max((_ts(e["stageTimestamp"]) for e in b.writes(since)), default=0)
        return time.time() - last >= 3

    wait_for(quiet, 120, "3 s without operator writes", interval=0.5)
    metrics_after = b.op.metrics()
    writes = b.writes(since)
    # Writes not made by the reconciler's client (kopf's own, if any) count too.
    others = [e for e in writes if not e.get("userAgent", "").startswith("fraudpipeline-operator/")]
    requests = _metric(metrics_after, "fraudpipeline_operator_api_requests_total") - _metric(
        metrics_before, "fraudpipeline_operator_api_requests_total"
    )
    passes = _metric(metrics_after, "fraudpipeline_operator_reconciles_total") - _metric(
        metrics_before, "fraudpipeline_operator_reconciles_total"
    )
    return {
        "name": "requests-per-reconcile",
        "value": round((requests + len(others)) / pipelines, 2),
        "unit": "API requests to bring one new pipeline up (finalizer, children, status, events)",
        "writes_per_pipeline": round(len(writes) / pipelines, 2),
        "reconcile_passes_per_pipeline": round(passes / pipelines, 2),
        "requests_per_pass": round(requests / passes, 2) if passes else None,
    }


def idle(b: Bench, seconds: float, pipelines: int) -> dict:
    """A measurement window (not a synchronisation): what the operator writes when nothing changes."""
    from fp_devtools.bench.operator_harness import describe

    task = b.progress(f"idle ({seconds:.0f} s with {pipelines} pipelines)", int(seconds))
    since = b.audit.offset()
    metrics_before = b.op.metrics()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        task()
    elapsed = time.monotonic() - t0
    writes = b.writes(since)
    requests = _metric(b.op.metrics(), "fraudpipeline_operator_api_requests_total") - _metric(
        metrics_before, "fraudpipeline_operator_api_requests_total"
    )
    return {
        "name": "idle",
        "writes_per_min": round(len(writes) / elapsed * 60, 2),
        "requests_per_min": round(requests / elapsed * 60, 2),
        "seconds": round(elapsed, 1),
        "writes": describe(writes)[:20],
        "target_writes_per_min": 0,
    }


def rss(sampler: RssSampler, objects_watched: int) -> dict:
    return {
        "name": "rss",
        "peak_mb": round(sampler.peak / 2**20, 1),
        "last_mb": round(sampler.last / 2**20, 1),
        "objects_watched": objects_watched,
        "target_peak_mb": 150,
    }


def cleanup(b: Bench) -> None:
    from fp_devtools.bench.operator_harness import wait_for

    task = b.progress("cleaning up", len(b.namespaces))
    for ns in b.namespaces:
        b.cluster.delete("v1", "Namespace", None, ns)
    for ns in b.namespaces:
        try:
            wait_for(lambda ns=ns: b.cluster.get("v1", "Namespace", None, ns) is None, 300, f"namespace {ns} deleted")
        except TimeoutError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        task()


def run_benchmark(
    kube_env: dict,
    helm: str | None,
    *,
    pipelines: int,
    samples: int,
    idle_seconds: float,
    workers: int,
    progress: Progress,
) -> dict:
    from fp_devtools.bench.operator_harness import AuditLog, Cluster, OperatorProcess, operator_identity

    cluster = Cluster(kube_env)
    cluster.install_crd()
    work = Path(tempfile.mkdtemp(prefix="fp-bench-operator-"))
    ident = operator_identity(cluster, helm, work)
    op = OperatorProcess(ident.kubeconfig, work / "operator.log", workers=workers)
    b = Bench(cluster, AuditLog(kube_env["audit_log"]), ident.username, op, progress)
    sampler = None
    try:
        op.start()
        sampler = RssSampler(op.pid)
        sampler.start()
        results = [apply_to_children(b, samples)]
        metrics_before = op.metrics()
        scale, since = reconcile_many(b, pipelines)
        results += [
            scale,
            requests_per_reconcile(b, pipelines, since, metrics_before),
            idle(b, idle_seconds, pipelines + samples),
        ]
        per_pipeline = len(expected_writes("x", "y"))
        results.append(rss(sampler, (pipelines + samples) * (1 + per_pipeline)))
    finally:
        cleanup(b)
        if sampler is not None:
            sampler.stop()
        op.stop()
    return {
        "benchmark": "operator",
        "machine": _machine(kube_env),
        "results": results,
        "setup": {
            "operator_identity": ident.username,
            "rbac": ident.rbac,
            "workers": workers,
            "operator_log": str(work / "operator.log"),
        },
    }


def command(
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON result on stdout.")] = False,
    pipelines: Annotated[int, typer.Option(help="Pipelines created back to back for reconcile-N.")] = 100,
    samples: Annotated[int, typer.Option(help="Pipelines timed one at a time for apply-to-children.")] = 20,
    idle_seconds: Annotated[float, typer.Option(help="Length of the idle window.")] = 60.0,
    workers: Annotated[int, typer.Option(help="Operator reconcile workers.")] = 4,
    dev_env: Annotated[
        Path | None,
        typer.Option(
            help="env.json of servers started with `fraudpipe dev up` "
            "(default: $FRAUDPIPE_DEV_ENV, else a kube control plane "
            "is started for the run and stopped after)."
        ),
    ] = None,
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
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=False,
        ) as bar:

            def progress(description: str, total: int):
                task = bar.add_task(description, total=total)
                return lambda: bar.advance(task)

            result = run_benchmark(
                env["kube"],
                (env.get("tools") or {}).get("helm"),
                pipelines=pipelines,
                samples=samples,
                idle_seconds=idle_seconds,
                workers=workers,
                progress=progress,
            )
    finally:
        if started_dir is not None:
            servers.down(started_dir)
    if not as_json:
        for r in result["results"]:
            console.print(
                f"[bold]{r['name']}[/bold]: "
                + ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("name", "writes"))
            )
    print(json.dumps(result, indent=2))
