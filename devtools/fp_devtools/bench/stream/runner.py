"""Run the stream benchmark's scenarios against one broker, one model and one scoring service.

Each scenario gets fresh topics and a fresh job (or the seed-style consumer), days of warm-up
transactions (scored, then left out of the figures), then the measured days at full speed or at a
fixed rate, with a garbage record every 1,000 so that the dead-letter path is in the measurement.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from fp_devtools.bench.serving.processes import ServerProcess, free_port, serve_command
from fp_devtools.bench.stream.measure import Collector, Timings, create_topics, percentile, produce

GARBAGE_EVERY = 1_000
SCENARIOS = ("embedded@max", "remote@max", "embedded@5000", "seed-style@max")
FLAG_ROLES = (
    ("--transactions-topic", "transactions"),
    ("--labels-topic", "labels"),
    ("--alerts-topic", "alerts"),
    ("--dead-letter-topic", "deadLetter"),
    ("--scores-topic", "scores"),
)


@dataclass
class Context:
    bootstrap: str
    broker_pid: int
    model: dict  # tag, export, home
    serving_url: str | None
    serving_pid: int | None
    work: Path
    checkpoint_interval: str
    say: Callable[[str], None]


def _events(table, with_garbage: bool):
    from fraudpipeline.replay.events import ReplayEvent, replay_events

    events = list(replay_events(table, label_delay_us=7 * 86_400_000_000, labels="fraud"))
    if not with_garbage:
        return events, 0
    out, garbage, n = [], 0, 0
    for event in events:
        out.append(event)
        if event.role == "transactions":
            n += 1
            if n % GARBAGE_EVERY == 0:
                out.append(ReplayEvent("transactions", b"bench-garbage", b'{"transaction_id": "broken', 0))
                garbage += 1
    return out, garbage


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) of each process and its children; the driver (this process)
    without its children, which are the pipeline and the scoring service, counted on their own."""
    import psutil

    out = {}
    for name, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            total = sum(proc.cpu_times()[:2])
            for child in [] if pid == os.getpid() else proc.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.NoSuchProcess:
                    pass
            out[name] = total
        except psutil.NoSuchProcess:
            out[name] = 0.0
    return out


def _start_pipeline(ctx: Context, kind: str, topics: dict[str, str], extra: list[str]) -> subprocess.Popen:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    log = open(ctx.work / f"{group}.log", "ab")
    # The job's contract flags, which the seed-style consumer takes too.
    common = ["--bootstrap-servers", ctx.bootstrap, "--group-id", group]
    for flag, role in FLAG_ROLES:
        common += [flag, topics[role]]
    if kind == "seed-style":
        argv = [sys.executable, "-m", "fp_devtools.bench.stream.seed", *common, "--serving-url", ctx.serving_url]
    else:
        argv = [sys.executable, "-m", "fraudpipeline.cli", "stream", "run", "--pipeline", "bench/stream", *common]
        argv += ["--model-tag", ctx.model["tag"], "--state-dir", str(ctx.work / group)]
        argv += ["--checkpoint-interval", ctx.checkpoint_interval, "--quiet"]
        if kind == "remote":
            argv += ["--scoring-mode", "remote", "--serving-url", ctx.serving_url]
        else:
            argv += ["--scoring-mode", "embedded", "--model-path", str(ctx.model["export"])]
        argv += extra
    return subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)


def _stop(proc: subprocess.Popen, timeout: float = 120) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _wait(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the pipeline process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(0.2)


def run_scenario(ctx: Context, name: str, warmup, measured, extra: list[str] | None = None) -> dict:
    kind, _, rate_text = name.partition("@")
    kind = kind.split("[")[0]
    rate = None if rate_text.startswith("max") else float(rate_text.split("[")[0])
    tag = uuid.uuid4().hex[:6]
    topics = {role: f"bench-{tag}.{role}" for role in ("transactions", "labels", "alerts", "deadLetter", "scores")}
    create_topics(ctx.bootstrap, topics)
    proc = _start_pipeline(ctx, kind, topics, extra or [])
    timings = Timings()
    collector = Collector(ctx.bootstrap, topics, timings).start()
    try:
        ctx.say(f"{name}: warming up ({sum(e.role == 'transactions' for e in warmup):,} transactions)")
        produce(ctx.bootstrap, topics, warmup, None, timings)
        n_warm = len(timings.appended_ms)
        _wait(lambda: len(timings.decided_ms) >= n_warm, proc, 600, f"{name} warm-up")
        time.sleep(1.0)
        # Only the measured transactions count from here on.
        timings.appended_ms.clear(), timings.decided_ms.clear(), timings.fraud.clear()
        timings.alert_seen_ms.clear()
        timings.dead_letters = 0
        events, garbage = measured
        n_in = sum(e.role == "transactions" for e in events)
        pids = {"broker": ctx.broker_pid, "pipeline": proc.pid, "driver": os.getpid()}
        if ctx.serving_pid and kind != "embedded":
            pids["scoring_service"] = ctx.serving_pid
        cpu0, t0 = _cpu(pids), time.monotonic()
        ctx.say(f"{name}: {n_in:,} transactions{' flat out' if rate is None else f' at {rate:,.0f}/s'}")
        produce_s = produce(ctx.bootstrap, topics, events, rate, timings)
        valid = n_in - garbage
        _wait(lambda: len(timings.decided_ms) >= valid, proc, 900, f"{name} decisions")
        decided_s = time.monotonic() - t0
        cpu1 = _cpu(pids)
        _wait(
            lambda: len(timings.fraud - timings.alert_seen_ms.keys()) == 0 and timings.dead_letters >= garbage,
            proc,
            120,
            f"{name} committed alerts",
        )
    finally:
        _stop(proc)
        collector.close()
    ids = [i for i in timings.decided_ms if i in timings.appended_ms]
    decision = [timings.decided_ms[i] - timings.appended_ms[i] for i in ids]
    # A warm-up alert committed after the warm-up (at the next checkpoint) is not a measured one.
    alerted = [i for i in timings.alert_seen_ms if i in timings.appended_ms]
    alert = [timings.alert_seen_ms[i] - timings.appended_ms[i] for i in alerted]
    span_s = (max(timings.decided_ms.values()) - min(timings.appended_ms.values())) / 1000.0
    below = len(timings.decided_ms) - len(timings.fraud)
    return {
        "name": name,
        "rows_per_s": round(valid / span_s, 1),
        "decision_p50_ms": percentile(decision, 0.50),
        "decision_p99_ms": percentile(decision, 0.99),
        "alert_p50_ms": percentile(alert, 0.50),
        "alert_p99_ms": percentile(alert, 0.99),
        "transactions_in": n_in,
        "accounted": len(alerted) + below + timings.dead_letters,
        "alerts": len(alerted),
        "below_threshold": below,
        "dead_letters": timings.dead_letters,
        "produce_s": round(produce_s, 2),
        "decided_in_s": round(decided_s, 2),
        "cpu_cores": {k: round((cpu1[k] - cpu0[k]) / decided_s, 2) for k in cpu0},
        "options": extra or [],
    }


def trained_model(cache: Path, retrain: bool, say: Callable[[str], None]) -> dict:
    """The benchmark's model: `fraudpipe train --quick`, kept in the cache for the next run."""
    export, home = cache / "export", cache / "bentoml"
    meta_file = export / "model.json"
    if retrain or not meta_file.exists():
        say("training the model (fraudpipe train --quick; kept for the next run)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENTOML_")}
        env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"})
        done = subprocess.run(
            [sys.executable, "-m", "fraudpipeline.cli", "train", "--quick", "--export", str(export), "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"fraudpipe train failed:\n{done.stderr[-2000:]}")
    meta = json.loads(meta_file.read_text())
    return {"tag": meta["tag"], "export": export, "home": home, "threshold": meta["threshold"]}


def start_serving(model: dict, work: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDPIPE_", "BENTOML_"))}
    env.update(
        {"BENTOML_HOME": str(model["home"]), "BENTOML_DO_NOT_TRACK": "true", "FRAUDPIPE_MODEL_TAG": model["tag"]}
    )
    server = ServerProcess("bentoml serve", serve_command(port), env, work / "serving.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready(url + "/readyz", deadline_s=180)
    except RuntimeError:
        server.stop()
        raise
    return server, url


def run(
    only: list[str] | None,
    first_day: str,
    days: int,
    warmup_days: int,
    checkpoint_interval: str,
    designs: bool,
    retrain: bool,
    say: Callable[[str], None],
) -> dict:
    from fp_devtools import servers
    from fp_devtools.cache import cache_dir
    from fp_devtools.machine import machine_info
    from fraudpipeline.data import resolve_transactions

    chosen = list(only or SCENARIOS)
    unknown = [s for s in chosen if s.split("[")[0] not in SCENARIOS]
    if unknown:
        raise RuntimeError(f"unknown scenario(s) {unknown}: choose from {', '.join(SCENARIOS)}")
    machine = machine_info(("apache-flink", "xgboost", "bentoml", "confluent-kafka"))
    work = Path(cache_dir("bench", "stream-runs", uuid.uuid4().hex[:8]))
    model = trained_model(Path(cache_dir("bench", "stream-model")), retrain, say)
    start = date.fromisoformat(first_day)
    table, source = resolve_transactions(None, start - timedelta(days=warmup_days), start + timedelta(days=days))
    split = table["timestamp"] >= str(start)
    warmup, _ = _events(table[~split], with_garbage=False)
    measured = _events(table[split], with_garbage=True)
    say(f"data: {source.description}; warm-up {int((~split).sum()):,}, measured {int(split.sum()):,} transactions")
    env = servers.up(["kafka"], work / "servers")
    serving = None
    results = []
    try:
        url = None
        if any(not s.startswith("embedded") for s in chosen):
            serving, url = start_serving(model, work)
        ctx = Context(
            env["kafka"]["bootstrap"],
            env["pids"]["kafka"],
            model,
            url,
            serving.proc.pid if serving else None,
            work,
            checkpoint_interval,
            say,
        )
        plan = [(s, []) for s in chosen]
        if designs:
            plan += [
                ("embedded@max[split,p1]", ["--layout", "split"]),
                ("embedded@max[split,p2]", ["--layout", "split", "--parallelism", "2"]),
                ("embedded@max[batch64]", ["--batch-size", "64"]),
                ("embedded@max[batch1024]", ["--batch-size", "1024"]),
                # Half the rate: the latency of a job that keeps up on this machine.
                ("embedded@2500", []),
            ]
        for name, extra in plan:
            result = run_scenario(ctx, name, warmup, measured, extra)
            say(
                f"{name}: {result['rows_per_s']:,.0f} tx/s, decision p50/p99 {result['decision_p50_ms']}/"
                f"{result['decision_p99_ms']} ms, alert p50/p99 {result['alert_p50_ms']}/{result['alert_p99_ms']} ms"
            )
            results.append(result)
    finally:
        if serving is not None:
            serving.stop()
        servers.down(work / "servers")
    return {
        "benchmark": "stream",
        "machine": machine,
        "settings": {
            "data": source.description,
            "first_day": first_day,
            "days": days,
            "warmup_days": warmup_days,
            "checkpoint_interval": checkpoint_interval,
            "model_tag": model["tag"],
            "garbage_every": GARBAGE_EVERY,
            "label_delay_days": 7,
            "note": "broker, job, scoring service and load generator share this machine's cores",
        },
        "results": results,
    }
