"""Run the serving benchmark: the service and the seed-style baseline under the same load.

Each server runs as `bentoml serve` / `uvicorn` in its own process group; the load comes from
`fp_devtools.bench.serving.loadgen` in another process. Both share this machine's cores with each
other (and with whatever else runs), so the report carries the CPU each side used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fp_devtools.bench.serving import processes
from fp_devtools.bench.serving.processes import ServerProcess

SERVICE = "fp_serving.service:FraudScorer"
BATCH_ROWS = 256
TARGETS = {"single_p99_ms_at_500": 10.0, "batch_rows_per_s": 100_000.0, "batch_over_baseline": 5.0}

Say = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    body: str  # "single" | "batch"
    rate: float | None = None
    connections: int = 16


def scenarios(connections: int) -> tuple[list[Scenario], list[Scenario]]:
    service = [
        Scenario("single@500", "/score", "single", rate=500),
        Scenario("single@max", "/score", "single", connections=connections),
        Scenario(f"batch{BATCH_ROWS}@max", "/score_batch", "batch", connections=4),
    ]
    base_line = [
        Scenario("baseline-single@500", "/predict", "single", rate=500),
        Scenario("baseline-single@max", "/predict", "single", connections=connections),
    ]
    return service, base_line


def machine_info() -> dict[str, Any]:
    from fp_devtools.machine import machine_info as shared

    return shared(("bentoml", "xgboost", "fastapi", "uvicorn", "pydantic"))


def _bodies(workdir: Path, seed: int = 7) -> dict[str, Path]:
    from fp_devtools.bench.serving.synthetic_model import synthetic_features
    from fraudpipeline.features import FEATURE_NAMES

    integer = {n for n in FEATURE_NAMES if n.startswith(("tx_during", "customer_nb", "terminal_nb"))}

    def row(values: Any) -> dict[str, Any]:
        return {n: (int(v) if n in integer else float(v)) for n, v in zip(FEATURE_NAMES, values)}

    x = synthetic_features(BATCH_ROWS, seed)
    paths = {"single": workdir / "single.json", "batch": workdir / "batch.json"}
    paths["single"].write_bytes(orjson.dumps(row(x[0])))
    paths["batch"].write_bytes(orjson.dumps({"rows": [row(r) for r in x]}))
    return paths


def _prepare_model(model_tag: str | None, workdir: Path, say: Say) -> tuple[str, str, bool]:
    """(tag, BENTOML_HOME, synthetic). Must run before anything imports bentoml."""
    if model_tag is None:
        home = str(workdir / "bentoml")
        os.environ["BENTOML_HOME"] = home
    else:
        home = os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml"))
    if "bentoml" in sys.modules and model_tag is None:
        raise RuntimeError("bentoml was imported before the benchmark set BENTOML_HOME")
    if model_tag is None:
        from fp_devtools.bench.serving.synthetic_model import save_synthetic_model

        say("training a synthetic stand-in model (100 trees, depth 6; quality meaningless)")
        return save_synthetic_model(n_trees=100, max_depth=6), home, True
    return model_tag, home, False


def _scrape(url: str) -> dict[str, float]:
    """The few metric sums the report uses, from the service's /metrics."""
    import urllib.request

    wanted = (
        "fraudpipe_serving_gc_pause_seconds_sum",
        "fraudpipe_serving_gc_pause_seconds_count",
        "fraudpipe_serving_predict_batch_rows_sum",
        "fraudpipe_serving_predict_batch_rows_count",
    )
    out: dict[str, float] = {}
    try:
        text = urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith(wanted):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _gc_and_batching(before: dict[str, float], after: dict[str, float], path: str) -> dict[str, Any]:
    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    rows = delta(f'fraudpipe_serving_predict_batch_rows_sum{{endpoint="{path}"}}')
    calls = delta(f'fraudpipe_serving_predict_batch_rows_count{{endpoint="{path}"}}')
    pause = "fraudpipe_serving_gc_pause_seconds"
    return {
        # Wall time of the collector's passes, by generation (gen 2 = full passes).
        "gc_pause_ms": {f"gen{g}": round(delta(f'{pause}_sum{{generation="{g}"}}') * 1000, 1) for g in range(3)},
        "gc_passes": {f"gen{g}": int(delta(f'{pause}_count{{generation="{g}"}}')) for g in range(3)},
        "rows_per_model_call": round(rows / calls, 1) if calls else None,
    }


class Profiler:
    """py-spy attached to a worker during a scenario, if py-spy is on PATH (optional)."""

    def __init__(self, enabled: bool, workdir: Path, say: Say) -> None:
        self.exe = shutil.which("py-spy") if enabled else None
        self.workdir = workdir
        if enabled and not self.exe:
            say("--profile: py-spy is not on PATH (pip install py-spy): no profile taken")

    def start(self, pid: int, name: str, duration: float) -> tuple[subprocess.Popen[bytes], Path] | None:
        if not self.exe:
            return None
        out = self.workdir / f"profile-{name.replace('@', '-')}.txt"
        proc = subprocess.Popen(
            [
                self.exe,
                "record",
                "-p",
                str(pid),
                "-d",
                str(max(1, int(duration))),
                "-r",
                "200",
                "-f",
                "raw",
                "--full-filenames",
                "-o",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return proc, out

    @staticmethod
    def summarize(handle: tuple[subprocess.Popen[bytes], Path] | None) -> dict[str, Any] | None:
        if handle is None:
            return None
        proc, out = handle
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return None
        if not out.exists():
            return None
        from fp_devtools.bench.serving.profile_summary import summarize_raw

        return summarize_raw(out.read_text())


def _run_loadgen(url: str, body: Path, sc: Scenario, duration: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "fp_devtools.bench.serving.loadgen",
        "--url",
        url,
        "--body-file",
        str(body),
        "--duration",
        str(duration),
        "--rows-per-request",
        str(BATCH_ROWS if sc.body == "batch" else 1),
    ]
    cmd += ["--rate", str(sc.rate)] if sc.rate else ["--connections", str(sc.connections)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _measure(
    server: ServerProcess,
    base_url: str,
    sc: Scenario,
    bodies: dict[str, Path],
    duration: float,
    profiler: Profiler | None,
    metrics_url: str | None,
) -> dict[str, Any]:
    before_metrics = _scrape(metrics_url) if metrics_url else {}
    cpu0, busy0, t0 = server.cpu_seconds(), processes.system_busy_seconds(), time.monotonic()
    handle = None
    if profiler is not None and sc.rate is None:
        pids = server.worker_pids()
        if pids:
            handle = profiler.start(pids[-1], sc.name, duration)
    load = _run_loadgen(base_url + sc.path, bodies[sc.body], sc, duration)
    wall = time.monotonic() - t0
    server_cpu = server.cpu_seconds() - cpu0
    busy = processes.system_busy_seconds() - busy0
    client_cpu = load.pop("client_cpu_s")
    ok = max(load["ok"], 1)
    row: dict[str, Any] = {
        "name": sc.name,
        "rows_per_s": load["rows_per_s"],
        "p50_ms": load["p50_ms"],
        "p95_ms": load["p95_ms"],
        "p99_ms": load["p99_ms"],
        "max_ms": load["max_ms"],
        "requests_per_s": load["requests_per_s"],
        "rows_per_request": BATCH_ROWS if sc.body == "batch" else 1,
        "requests": load["requests"],
        "errors": load["errors"],
        "load": (
            {"mode": "open_loop", "rate_per_s": sc.rate}
            if sc.rate
            else {"mode": "closed_loop", "connections": sc.connections}
        ),
        "duration_s": load["elapsed_s"],
        "cpu": {
            "server_ms_per_request": round(server_cpu / ok * 1000, 3),
            "server_cores": round(server_cpu / wall, 2),
            "load_generator_cores": round(client_cpu / wall, 2),
            "everything_else_cores": round(max(0.0, busy - server_cpu - client_cpu) / wall, 2),
        },
    }
    if metrics_url:
        row["service"] = _gc_and_batching(before_metrics, _scrape(metrics_url), sc.path)
    if handle is not None:
        row["profile"] = Profiler.summarize(handle)
    return row


def _warm_up(base_url: str, scs: list[Scenario], bodies: dict[str, Path], seconds: float) -> None:
    seen = set()
    for sc in scs:
        if sc.path in seen:
            continue
        seen.add(sc.path)
        _run_loadgen(base_url + sc.path, bodies[sc.body], Scenario(sc.name, sc.path, sc.body, connections=8), seconds)


def targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["name"]: r for r in results}
    out: dict[str, Any] = {}
    if "single@500" in by:
        p99 = by["single@500"]["p99_ms"]
        out["single@500 p99 <= 10 ms"] = {"value_ms": p99, "met": p99 <= TARGETS["single_p99_ms_at_500"]}
    batch = by.get(f"batch{BATCH_ROWS}@max")
    if batch:
        out["batch >= 100,000 rows/s"] = {
            "value": batch["rows_per_s"],
            "met": batch["rows_per_s"] >= TARGETS["batch_rows_per_s"],
        }
        base = by.get("baseline-single@max")
        if base and base["rows_per_s"]:
            ratio = batch["rows_per_s"] / base["rows_per_s"]
            out["batch256@max >= 5x baseline-single@max"] = {
                "value_x": round(ratio, 1),
                "met": ratio >= TARGETS["batch_over_baseline"],
            }
    return out


def run(
    *,
    duration: float = 8.0,
    workers: int = 1,
    connections: int = 16,
    model_tag: str | None = None,
    profile: bool = False,
    say: Say = print,
) -> dict[str, Any]:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fp-bench-serving-"))
    try:
        return _run(workdir, duration, workers, connections, model_tag, profile, say, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    workdir: Path,
    duration: float,
    workers: int,
    connections: int,
    model_tag: str | None,
    profile: bool,
    say: Say,
    started: float,
) -> dict[str, Any]:
    machine = machine_info()
    tag, home, synthetic = _prepare_model(model_tag, workdir, say)

    from fp_devtools.bench.serving import stages
    from fp_serving.config import ServingSettings
    from fp_serving.scoring import load_scorer

    scorer = load_scorer(ServingSettings(model_tag=tag, threshold_override=None, workers=1))
    bodies = _bodies(workdir)
    say("timing each scoring stage in process (no HTTP)")
    in_process = stages.measure(scorer, bodies["single"].read_bytes(), bodies["batch"].read_bytes())
    model_file = workdir / "model.ubj"
    scorer.booster.save_model(str(model_file))

    env = {
        **os.environ,
        "BENTOML_HOME": home,
        "BENTOML_DO_NOT_TRACK": "true",
        "FRAUDPIPE_MODEL_TAG": tag,
        "FRAUDPIPE_WORKERS": str(workers),
    }
    env.pop("FRAUDPIPE_THRESHOLD", None)
    port, base_port = processes.free_port(), processes.free_port()
    service_url, baseline_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{base_port}"
    service_scs, baseline_scs = scenarios(connections)
    profiler = Profiler(profile, workdir, say) if profile else None
    results: list[dict[str, Any]] = []

    say(f"starting the service: bentoml serve {SERVICE} ({workers} worker(s)) on {service_url}")
    with ServerProcess(
        "bentoml serve",
        [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
        env,
        workdir / "service.log",
    ) as server:
        ready_s = server.wait_ready(service_url + "/readyz")
        say(f"service ready in {ready_s:.1f} s; warming up")
        _warm_up(service_url, service_scs, bodies, 2.0)
        for sc in service_scs:
            say(f"{sc.name}: {duration:.0f} s")
            results.append(_measure(server, service_url, sc, bodies, duration, profiler, service_url + "/metrics"))
            say(_line(results[-1]))

    say(f"starting the seed-style baseline (FastAPI + XGBoost, uvicorn) on {baseline_url}")
    base_env = {
        **env,
        "FRAUDPIPE_BASELINE_MODEL": str(model_file),
        "FRAUDPIPE_BASELINE_THRESHOLD": str(scorer.threshold),
    }
    with ServerProcess(
        "baseline",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "fp_devtools.bench.serving.baseline_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(base_port),
            "--no-access-log",
        ],
        base_env,
        workdir / "baseline.log",
    ) as baseline:
        baseline.wait_ready(baseline_url + "/health")
        _warm_up(baseline_url, baseline_scs, bodies, 2.0)
        for sc in baseline_scs:
            say(f"{sc.name}: {duration:.0f} s")
            results.append(_measure(baseline, baseline_url, sc, bodies, duration, None, None))
            say(_line(results[-1]))

    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    machine["note"] = (
        "shared machine: CPU used by other processes during each scenario is in results[].cpu.everything_else_cores"
    )
    for row in results:
        if row["name"].startswith("baseline"):
            continue
        stages_us = in_process["batch256" if row["rows_per_request"] > 1 else "single"]["total_us"]
        server_us = row["cpu"]["server_ms_per_request"] * 1000
        # Server CPU per request = scoring stages (measured in process) + everything HTTP.
        row["cpu"]["scoring_stages_us_per_request"] = stages_us
        row["cpu"]["http_stack_us_per_request"] = round(server_us - stages_us, 1)
    busy = [
        f"{r['name']} ({r['cpu']['everything_else_cores']} cores)"
        for r in results
        if r["cpu"]["everything_else_cores"] > 0.5
    ]
    warnings = (
        [
            f"other processes took over half a core during: {', '.join(busy)}; the servers "
            "and the load generator shared what was left, so those figures understate them"
        ]
        if busy
        else []
    )
    return {
        "benchmark": "serving",
        "warnings": warnings,
        "machine": machine,
        "model": {
            "tag": tag,
            "synthetic": synthetic,
            "trees": scorer.booster.num_boosted_rounds(),
            "threshold": scorer.threshold,
        },
        "config": {
            "service": f"bentoml serve {SERVICE}, FRAUDPIPE_WORKERS={workers}",
            "baseline": "uvicorn fp_devtools.bench.serving.baseline_app:app (1 process, sync FastAPI "
            "handler, DMatrix per call, default XGBoost threads, no access log)",
            "load_generator": "python -m fp_devtools.bench.serving.loadgen (separate process, raw "
            "HTTP/1.1 keep-alive; open loop timed from the scheduled send)",
            "duration_s_per_scenario": duration,
            "batch_rows": BATCH_ROWS,
        },
        "results": results,
        "targets": targets(results),
        "in_process_us": in_process,
        "wall_s": round(time.monotonic() - started, 1),
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"  {r['name']}: {r['rows_per_s']:,.0f} rows/s, p50 {r['p50_ms']:.2f} / p95 "
        f"{r['p95_ms']:.2f} / p99 {r['p99_ms']:.2f} ms, errors {r['errors'] or 0}, server "
        f"{r['cpu']['server_cores']} cores, others {r['cpu']['everything_else_cores']}"
    )
