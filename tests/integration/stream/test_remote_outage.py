"""Remote scoring through an outage of the scoring service longer than the checkpoint timeout.

The real `bentoml serve`, the real broker, the job in PyFlink's mini-cluster (`fraudpipe stream
run`, unbounded). The first part of the input is scored and committed, then the service is
stopped while the rest of the transactions keep coming, for longer than the checkpoint timeout,
and started again. The job must come back by itself: the scorer gives up after
--scoring-max-wait, the task fails, Flink's restart strategy (exponential delay) restores the
last checkpoint, again and again until the service answers; then checkpoints complete again and
every input ends exactly once as a score (alert or not) or a dead letter, the alerts being the
offline model's decisions on the offline features.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pytest
from kafka_io import create_topics, produce, read_all
from stream_helpers import Topics, job_args, serve_model, stop_service, wait_service_ready

pytestmark = pytest.mark.integration

N = 30_000  # transactions in all
BEFORE = 12_000  # scored and committed before the outage; the rest arrive while the service is down
CHECKPOINT_INTERVAL = "1s"
CHECKPOINT_TIMEOUT_S = 8
MAX_WAIT = "3s"
OUTAGE_S = 2 * CHECKPOINT_TIMEOUT_S  # two checkpoint timeouts down, plus the service's own start
OUTAGE_RATE = 1_500  # transactions a second produced during the outage

BAD_BEFORE = [(b"c-bad-1", b"this is not json"), (b"c-bad-2", None)]
BAD_DURING = [
    (
        b"c-bad-3",
        b'{"transaction_id": "g3", "timestamp": "2018-08-03T10:00:00Z", "customer_id": "c9", '
        b'"terminal_id": "t9", "amount": -5}',
    ),
    (None, b"[1, 2, 3]"),
]


def _flink_metrics(port: int) -> dict[str, float]:
    """The job manager's job metrics (restarts, checkpoints) from the job's Prometheus reporter."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("flink_jobmanager_job_"):
            name, _, value = line.rpartition(" ")
            out[name.split("{", 1)[0].removeprefix("flink_jobmanager_job_")] = float(value)
    return out


def _newest_checkpoint_time(state: Path) -> float:
    times = [m.stat().st_mtime for m in state.glob("checkpoints/*/chk-*/_metadata")]
    return max(times, default=0.0)


def _wait_for(what: str, check, job, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert job.proc.poll() is None, f"the job ended while waiting for {what}:\n{job.tail()}"
        assert time.monotonic() < deadline, f"no {what} in {timeout:.0f} s; job log {job.log}:\n{job.tail()}"
        time.sleep(every)


def test_remote_scoring_recovers_from_an_outage_longer_than_the_checkpoint_timeout(
    kafka, transactions, trained_model, connector_jar, run_job, tmp_path
):
    from fp_devtools.process import free_port
    from fraudpipeline.features import FEATURE_NAMES
    from fraudpipeline.features.offline import compute_features
    from fraudpipeline.model import load_export
    from fraudpipeline.replay.events import replay_events
    from fraudpipeline.replay.kafka import KafkaSink
    from fraudpipeline.replay.runner import replay

    bootstrap = kafka["bootstrap"]
    table = transactions.iloc[:N].reset_index(drop=True)
    topics = Topics.named(f"outage-{os.getpid()}")
    create_topics(bootstrap, topics.all())
    events = list(replay_events(table, label_delay_us=86_400_000_000, labels="fraud"))
    tx_seen, split = 0, len(events)
    for i, event in enumerate(events):
        if event.role == "transactions":
            tx_seen += 1
            if tx_seen > BEFORE:
                split = i
                break
    sink_topics = {"transactions": topics.transactions, "labels": topics.labels}

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = serve_model(trained_model, port, tmp_path / "serve-1.log")
    producer_thread = None
    try:
        wait_service_ready(url, service)
        replay(events[:split], KafkaSink(bootstrap, sink_topics))
        produce(bootstrap, topics.transactions, BAD_BEFORE)
        state = tmp_path / "outage-state"
        job = run_job(
            job_args(
                bootstrap,
                topics,
                "outage",
                trained_model,
                remote_url=url,
                extra=(
                    "--checkpoint-interval",
                    CHECKPOINT_INTERVAL,
                    "--checkpoint-timeout",
                    f"{CHECKPOINT_TIMEOUT_S}s",
                    "--scoring-max-wait",
                    MAX_WAIT,
                ),
            ),
            "outage",
            state,
        )

        def committed_scores() -> int:
            return len(read_all(bootstrap, topics.scores, idle_s=0.5))

        _wait_for("scores of the first part", lambda: committed_scores() >= BEFORE, job, timeout=240)
        run = json.loads((state / "run.json").read_text())
        before = _flink_metrics(run["metrics_port"])

        # The outage: the service goes away while the rest of the transactions keep coming.
        stop_service(service)
        down_at = time.monotonic()

        def produce_during_outage() -> None:
            replay(events[split:], KafkaSink(bootstrap, sink_topics), rate=OUTAGE_RATE)
            produce(bootstrap, topics.transactions, BAD_DURING)

        producer_thread = threading.Thread(target=produce_during_outage, daemon=True)
        producer_thread.start()
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        assert job.proc.poll() is None, job.tail()
        during = committed_scores()
        assert during == BEFORE, "scores were committed while the scoring service was down"
        producer_thread.join(60)
        assert not producer_thread.is_alive()

        service = serve_model(trained_model, port, tmp_path / "serve-2.log")
        wait_service_ready(url, service)
        up_at, up_wall = time.monotonic(), time.time()
        outage_s = up_at - down_at
        _wait_for("scores after the outage", lambda: committed_scores() > BEFORE, job, timeout=150)
        first_after_s = time.monotonic() - up_at
        _wait_for("every score", lambda: committed_scores() >= N, job, timeout=150)
        all_after_s = time.monotonic() - up_at
        # Checkpoints complete again: a newer one than the service's return, and the counter moved.
        _wait_for("a checkpoint after the outage", lambda: _newest_checkpoint_time(state) > up_wall, job, timeout=60)
        after = _flink_metrics(run["metrics_port"])

        job.proc.send_signal(signal.SIGTERM)  # stop with a savepoint: commits whatever is left
        summary = job.wait(timeout=120)
    finally:
        if producer_thread is not None:
            producer_thread.join(60)
        stop_service(service)

    # The job failed and came back by itself, and not by checkpoint expiry: the scorer gave up first.
    assert summary["state"] == "STOPPED", summary
    restarts = after.get("numRestarts", 0) - before.get("numRestarts", 0)
    assert restarts >= 1, (before, after)
    assert after.get("numberOfCompletedCheckpoints", 0) > before.get("numberOfCompletedCheckpoints", 0)
    flink_log = "\n".join(p.read_text(errors="replace") for p in (state / "log").glob("*"))
    assert "ScoringUnavailable" in flink_log
    assert "expired before completing" not in flink_log  # no checkpoint ran into its timeout
    # (The job's own counters, remote_retries included, start again from 0 with each attempt.)

    # Every input exactly once: a score (an alert above the threshold) or a dead letter.
    alerts = [orjson.loads(m.value) for m in read_all(bootstrap, topics.alerts)]
    scores = [orjson.loads(m.value) for m in read_all(bootstrap, topics.scores)]
    dead = read_all(bootstrap, topics.dead_letter)
    score_ids = [s["transaction_id"] for s in scores]
    assert len(score_ids) == len(set(score_ids)) == N, "a transaction was lost or scored twice"
    assert set(score_ids) == {str(t) for t in table["transaction_id"]}
    assert sorted(m.value or b"" for m in dead) == sorted(v or b"" for _, v in BAD_BEFORE + BAD_DURING)
    alert_ids = [a["transaction"]["transaction_id"] for a in alerts]
    assert len(alert_ids) == len(set(alert_ids)), "an alert was committed twice"
    assert set(alert_ids) == {s["transaction_id"] for s in scores if s["is_fraud"]}

    # The alerts are the uninterrupted offline expectation: its features, its model's decisions.
    offline = compute_features(table)
    booster, meta = load_export(trained_model["export"])
    probs = booster.inplace_predict(offline.to_numpy(dtype=np.float32))
    expected = {str(table["transaction_id"][i]) for i in np.flatnonzero(probs >= meta.threshold)}
    assert set(alert_ids) == expected
    by_id = {str(t): i for i, t in enumerate(table["transaction_id"])}
    for alert in alerts:
        row = by_id[alert["transaction"]["transaction_id"]]
        assert [alert["features"][name] for name in FEATURE_NAMES] == offline.iloc[row].tolist()
        assert alert["model_tag"] == trained_model["tag"]
    for s in scores:
        assert s["score"] == pytest.approx(float(probs[by_id[s["transaction_id"]]]), abs=1e-6)
    print(
        f"\noutage {outage_s:.1f} s (checkpoint timeout {CHECKPOINT_TIMEOUT_S} s, --scoring-max-wait {MAX_WAIT}); "
        f"{restarts:.0f} restarts; "
        f"first score committed {first_after_s:.1f} s after the service was back, all {N} after {all_after_s:.1f} s; "
        f"checkpoints completed {before.get('numberOfCompletedCheckpoints')} -> "
        f"{after.get('numberOfCompletedCheckpoints')}, failed {before.get('numberOfFailedCheckpoints')} -> "
        f"{after.get('numberOfFailedCheckpoints')}; {len(alerts)} alerts, {len(dead)} dead letters"
    )
