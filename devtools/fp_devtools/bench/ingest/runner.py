"""Run the ingest benchmark: a broker of its own, `fraudpipe ingest run`, load from another process.

Everything shares the machine's cores: the broker (a JVM), the service, the load generator and
whatever else runs. Each scenario reports the CPU each of them used, and how much went elsewhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from fp_devtools.bench.serving import processes
from fp_devtools.bench.serving.processes import ServerProcess

JSON_FMT = "application/vnd.kafka.json.v2+json"
BATCH = 100
PARTITIONS = 3
TARGETS = {"single_requests_per_s": 2_500.0, "batch_records_per_s": 100_000.0, "single_p99_ms_at_1000": 20.0}

Say = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "http" | "plain"
    path: str = ""
    records: int = 1  # per request
    content_type: str = JSON_FMT
    rate: float | None = None  # requests/s (open loop); None: closed loop (flat out)
    connections: int = 16


def scenarios(connections: int) -> list[Scenario]:
    bridge, v1 = "/topics/{topic}", "/v1/transactions"
    return [
        Scenario("bridge-single@1000", "http", bridge, rate=1000),
        Scenario("bridge-single@max", "http", bridge, connections=connections),
        Scenario(f"bridge-batch{BATCH}@500", "http", bridge, records=BATCH, rate=500),
        Scenario(f"bridge-batch{BATCH}@max", "http", bridge, records=BATCH, connections=8),
        Scenario("v1-single@max", "http", v1, content_type="application/json", connections=connections),
        Scenario(f"v1-batch{BATCH}@max", "http", v1, records=BATCH, content_type="application/json", connections=8),
        Scenario("kafka-producer@1000", "plain", rate=1000),
        Scenario("kafka-producer@max", "plain"),
    ]


def _transactions(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    start = 1_532_476_800  # 2018-07-25T00:00:00Z
    out = []
    for i in range(n):
        ts = start + i * 7
        out.append(
            {
                "transaction_id": f"tx-{i:09d}",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
                "customer_id": f"c-{rnd.randrange(5000)}",
                "terminal_id": f"t-{rnd.randrange(10000)}",
                "amount": round(rnd.uniform(1, 200), 2),
            }
        )
    return out


def _bodies(workdir: Path, txs: list[dict[str, Any]]) -> dict[tuple[str, int], Path]:
    """Request bodies, cycled by the load generator: 1,000 of each kind, keys spread over cards."""
    out = {}
    for path, size in (("bridge", 1), ("bridge", BATCH), ("v1", 1), ("v1", BATCH)):
        bodies = []
        for r in range(1000):
            chunk = [txs[(r * size + i) % len(txs)] for i in range(size)]
            if path == "bridge":
                bodies.append(
                    json.dumps(
                        {"records": [{"key": t["customer_id"], "value": t} for t in chunk]}, separators=(",", ":")
                    )
                )
            else:
                bodies.append(json.dumps(chunk[0] if size == 1 else chunk, separators=(",", ":")))
        file = workdir / f"{path}-{size}.json"
        file.write_text(json.dumps(bodies))
        out[(path, size)] = file
    records = workdir / "plain.json"
    records.write_text(json.dumps([[t["customer_id"], json.dumps(t, separators=(",", ":"))] for t in txs[:1000]]))
    out[("plain", 1)] = records
    return out


def _pipeline_file(workdir: Path) -> Path:
    path = workdir / "pipeline.yaml"
    path.write_text(f"""apiVersion: frauddetect.dev/v1alpha1
kind: FraudPipeline
metadata: {{name: bench, namespace: fraud}}
spec:
  kafka:
    cluster: main
    topics: {{transactions: {{partitions: {PARTITIONS}}}, labels: {{partitions: {PARTITIONS}}}}}
  model: {{image: bench, modelTag: "fraud-xgb:bench"}}
  stream: {{image: bench}}
""")
    return path


def _create_topics(bootstrap: str, names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        fut.result(timeout=30)


def _cpu(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        total = 0.0
        for p in (proc, *proc.children(recursive=True)):
            t = p.cpu_times()
            total += t.user + t.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


def _load(sc: Scenario, url: str, bodies: dict, bootstrap: str, topic: str, duration: float) -> dict[str, Any]:
    if sc.kind == "plain":
        cmd = [
            sys.executable,
            "-m",
            "fp_devtools.bench.ingest.plain",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--records",
            str(bodies[("plain", 1)]),
            "--duration",
            str(duration),
        ]
        if sc.rate:
            cmd += ["--rate", str(sc.rate)]
    else:
        kind = "v1" if sc.path.startswith("/v1") else "bridge"
        cmd = [
            sys.executable,
            "-m",
            "fp_devtools.bench.ingest.loadgen",
            "--url",
            url + sc.path.format(topic=topic),
            "--bodies",
            str(bodies[(kind, sc.records)]),
            "--content-type",
            sc.content_type,
            "--records-per-request",
            str(sc.records),
            "--duration",
            str(duration),
        ]
        cmd += ["--rate", str(sc.rate)] if sc.rate else ["--connections", str(sc.connections)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{sc.name}: load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _measure(
    sc: Scenario,
    service: ServerProcess,
    broker_pid: int,
    url: str,
    bodies: dict,
    bootstrap: str,
    topic: str,
    duration: float,
) -> dict[str, Any]:
    server0, broker0 = service.cpu_seconds(), _cpu(broker_pid)
    busy0, t0 = processes.system_busy_seconds(), time.monotonic()
    load = _load(sc, url, bodies, bootstrap, topic, duration)
    wall = time.monotonic() - t0
    server = service.cpu_seconds() - server0 if sc.kind == "http" else 0.0
    broker = _cpu(broker_pid) - broker0
    busy = processes.system_busy_seconds() - busy0
    client = load.pop("client_cpu_s")
    ok = max(load["ok"], 1)
    return {
        "name": sc.name,
        "endpoint": sc.path or "(no HTTP: confluent-kafka Producer, same settings)",
        "records_per_request": sc.records,
        "records_per_s": load["rows_per_s"],
        "requests_per_s": load["requests_per_s"],
        "p50_ms": load["p50_ms"],
        "p95_ms": load["p95_ms"],
        "p99_ms": load["p99_ms"],
        "max_ms": load["max_ms"],
        "requests": load["requests"],
        "errors": load["errors"],
        "load": (
            {"mode": "open_loop", "rate_per_s": sc.rate}
            if sc.rate
            else {
                "mode": "closed_loop" if sc.kind == "http" else "flat_out",
                **({"connections": sc.connections} if sc.kind == "http" else {}),
            }
        ),
        "duration_s": load["elapsed_s"],
        "cpu": {
            "service_cores": round(server / wall, 2),
            "service_us_per_request": round(server / ok * 1e6, 1) if sc.kind == "http" else None,
            "broker_cores": round(broker / wall, 2),
            "load_generator_cores": round(client / wall, 2),
            "everything_else_cores": round(max(0.0, busy - server - broker - client) / wall, 2),
        },
    }


def targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    by = {r["name"]: r for r in results}
    out: dict[str, Any] = {}
    if "bridge-single@max" in by:
        v = by["bridge-single@max"]["requests_per_s"]
        out["single-record requests/s >= 2,500 (bridge-single@max)"] = {
            "value": v,
            "met": v >= TARGETS["single_requests_per_s"],
        }
    if f"bridge-batch{BATCH}@max" in by:
        v = by[f"bridge-batch{BATCH}@max"]["records_per_s"]
        out[f"records/s in {BATCH}-record requests >= 100,000 (bridge-batch{BATCH}@max)"] = {
            "value": v,
            "met": v >= TARGETS["batch_records_per_s"],
        }
    if "bridge-single@1000" in by:
        r = by["bridge-single@1000"]
        met = r["p99_ms"] <= TARGETS["single_p99_ms_at_1000"] and not r["errors"]
        out["p99 <= 20 ms at 1,000 requests/s (bridge-single@1000)"] = {"value_ms": r["p99_ms"], "met": met}
    return out


def run(
    *,
    duration: float = 8.0,
    connections: int = 32,
    workers: int = 1,
    only: list[str] | None = None,
    say: Say = print,
) -> dict[str, Any]:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="fp-bench-ingest-"))
    try:
        return _run(workdir, duration, connections, workers, only, say, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    workdir: Path,
    duration: float,
    connections: int,
    workers: int,
    only: list[str] | None,
    say: Say,
    started: float,
) -> dict[str, Any]:
    from fp_devtools import kafka as dev_kafka
    from fp_devtools.machine import machine_info
    from fp_devtools.process import stop

    machine = machine_info(("confluent-kafka", "fastapi", "uvicorn", "uvloop", "httptools", "orjson"))
    chosen = [sc for sc in scenarios(connections) if not only or sc.name in only]
    bodies = _bodies(workdir, _transactions(20_000))
    say("starting a Kafka broker of the benchmark's own")
    env = dev_kafka.start(workdir / "kafka-state")
    bootstrap, broker_pid = env["kafka"]["bootstrap"], env["pids"]["kafka"]
    results: list[dict[str, Any]] = []
    try:
        topic, labels = "fraud.bench.transactions", "fraud.bench.labels"
        _create_topics(bootstrap, [topic, labels, "bench.plain"])
        port = processes.free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "fraudpipeline.cli",
            "ingest",
            "run",
            "-f",
            str(_pipeline_file(workdir)),
            "--bootstrap-servers",
            bootstrap,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        say(f"starting fraudpipe ingest on {url}")
        with ServerProcess("fraudpipe ingest", cmd, dict(os.environ), workdir / "ingest.log") as service:
            service.wait_ready(url + "/readyz", deadline_s=180)
            say("warming up")
            _load(Scenario("warm-up", "http", "/topics/{topic}", connections=8), url, bodies, bootstrap, topic, 2.0)
            for sc in chosen:
                say(f"{sc.name}: {duration:.0f} s")
                target_topic = "bench.plain" if sc.kind == "plain" else topic
                results.append(_measure(sc, service, broker_pid, url, bodies, bootstrap, target_topic, duration))
                say(_line(results[-1]))
    finally:
        stop(broker_pid)
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    busy = [
        f"{r['name']} ({r['cpu']['everything_else_cores']} cores)"
        for r in results
        if r["cpu"]["everything_else_cores"] > 0.5
    ]
    warnings = (
        [
            f"other processes took over half a core during: {', '.join(busy)}; the service, the broker and "
            "the load generator shared what was left, so those figures understate them"
        ]
        if busy
        else []
    )
    return {
        "benchmark": "ingest",
        "warnings": warnings,
        "machine": machine,
        "config": {
            "service": f"fraudpipe ingest run --workers {workers} (uvicorn, uvloop, httptools; per worker process "
            "one confluent-kafka producer: enable.idempotence, acks=all, linger.ms=1, murmur2 partitioner)",
            "workers": workers,
            "broker": "Apache Kafka 4.4.0, KRaft, one node, started by fp_devtools on this machine",
            "topic": f"{PARTITIONS} partitions, replication factor 1",
            "records": "card transactions of about 130 bytes (JSON), keyed by card (5,000 cards); bridge "
            "scenarios use the json embedded format, v1 ones POST /v1/transactions (validated)",
            "load_generator": "python -m fp_devtools.bench.ingest.loadgen (separate process, HTTP/1.1 keep-alive, "
            "open loop timed from the scheduled send)",
            "duration_s_per_scenario": duration,
        },
        "results": results,
        "targets": targets(results),
        "wall_s": round(time.monotonic() - started, 1),
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"  {r['name']}: {r['records_per_s']:,.0f} records/s ({r['requests_per_s']:,.0f} req/s), p50 "
        f"{r['p50_ms']:.2f} / p99 {r['p99_ms']:.2f} ms, errors {r['errors'] or 0}; cores: service "
        f"{r['cpu']['service_cores']}, broker {r['cpu']['broker_cores']}, load "
        f"{r['cpu']['load_generator_cores']}, others {r['cpu']['everything_else_cores']}"
    )
