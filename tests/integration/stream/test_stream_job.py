"""The streaming job on the real broker and PyFlink's mini-cluster, 50,000 handbook transactions.

One uninterrupted embedded run is the reference: every input is accounted for, its features equal
the offline computation, its alerts are the offline model's decisions, garbage lands in the
dead-letter topic. Then the same input through a run killed with SIGKILL and restarted from its
checkpoint, and through remote scoring while the scoring service restarts: each must end with
exactly the reference's committed alerts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest
from kafka_io import create_topics, produce, read_all
from stream_helpers import (
    N_TRANSACTIONS,
    REPO,
    Topics,
    job_args,
    serve_model,
    stop_service,
    wait_service_ready,
)

pytestmark = pytest.mark.integration

H_REASON = "fraudpipe.error.reason"
H_FIELD = "fraudpipe.error.field"

# (key, value, the field the dead letter must name)
BAD_TRANSACTIONS = [
    (b"c-bad-1", b"this is not json", "(document)"),
    (b"c-bad-2", b'{"transaction_id": "g2", "timestamp": "2018-08-0', "(document)"),
    (
        b"c-bad-3",
        b'{"transaction_id": "g3", "timestamp": "2018-08-03T10:00:00Z", "customer_id": "c9", '
        b'"terminal_id": "t9", "amount": -5}',
        "amount",
    ),
    (
        b"c-bad-4",
        b'{"transaction_id": "g4", "timestamp": "2018-08-03T10:00:00Z", "terminal_id": "t9", "amount": 5}',
        "customer_id",
    ),
    (
        b"c-bad-5",
        b'{"transaction_id": "g5", "timestamp": "2018-08-03T10:00:00", "customer_id": "c9", '
        b'"terminal_id": "t9", "amount": 5}',
        "timestamp",
    ),
    (None, b"\xff\xfe\x00 binary", "(document)"),
    (b"c-bad-7", b"[1, 2, 3]", "(document)"),
    (b"c-bad-8", None, "(document)"),  # a tombstone
]
BAD_LABELS = [
    (b"t-bad-1", b"nope", "(document)"),
    (
        b"t-bad-2",
        b'{"transaction_id": "1", "customer_id": "1", "terminal_id": "1", '
        b'"timestamp": "2018-08-03T10:00:00Z", "fraud": 2}',
        "fraud",
    ),
]


def _replay(bootstrap: str, topics: Topics, table) -> tuple[int, int]:
    from fraudpipeline.replay.events import replay_events
    from fraudpipeline.replay.kafka import KafkaSink
    from fraudpipeline.replay.runner import replay

    sink = KafkaSink(bootstrap, {"transactions": topics.transactions, "labels": topics.labels})
    counts = replay(replay_events(table, label_delay_us=86_400_000_000, labels="fraud"), sink)
    return counts.transactions, counts.labels


@pytest.fixture(scope="module")
def stream_input(kafka, transactions, connector_jar):
    """The input topics: 50,000 transactions and their fraud labels, then garbage, a duplicate and a
    transaction from the far future. Returns what was written."""
    bootstrap = kafka["bootstrap"]
    topics = Topics.named(f"stream-{os.getpid()}")
    create_topics(bootstrap, topics.all())
    n_tx, n_labels = _replay(bootstrap, topics, transactions)
    first = transactions.iloc[0]
    duplicate = orjson.dumps(
        {
            "transaction_id": str(first.transaction_id),
            "timestamp": "2018-08-02T00:00:00Z",
            "customer_id": str(first.customer_id),
            "terminal_id": str(first.terminal_id),
            "amount": 1.0,
        }
    )
    future = orjson.dumps(
        {
            "transaction_id": "from-2030",
            "timestamp": "2030-01-01T00:00:00Z",
            "customer_id": str(first.customer_id),
            "terminal_id": str(first.terminal_id),
            "amount": 10.0,
        }
    )
    refused = [
        (str(first.customer_id).encode(), duplicate, "transaction_id"),
        (str(first.customer_id).encode(), future, "timestamp"),
    ]
    produce(bootstrap, topics.transactions, [(k, v) for k, v, _ in BAD_TRANSACTIONS + refused])
    produce(bootstrap, topics.labels, [(k, v) for k, v, _ in BAD_LABELS])
    return {
        "bootstrap": bootstrap,
        "topics": topics,
        "transactions": n_tx,
        "labels": n_labels,
        "bad": BAD_TRANSACTIONS + refused,
        "bad_labels": BAD_LABELS,
    }


def _outputs(bootstrap: str, topics: Topics, alerts_topic: str | None = None) -> dict:
    alerts = [orjson.loads(m.value) for m in read_all(bootstrap, alerts_topic or topics.alerts)]
    scores = [orjson.loads(m.value) for m in read_all(bootstrap, topics.scores)]
    dead = read_all(bootstrap, topics.dead_letter)
    return {"alerts": alerts, "scores": scores, "dead": dead}


@pytest.fixture(scope="module")
def reference_run(stream_input, trained_model, tmp_path_factory):
    """One uninterrupted embedded run (fused layout) over the whole input, bounded."""
    tmp = tmp_path_factory.mktemp("reference")
    topics = stream_input["topics"]
    args = job_args(stream_input["bootstrap"], topics, "ref", trained_model, extra=("--bounded",))
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudpipeline.cli",
            "stream",
            "run",
            *args,
            "--state-dir",
            str(tmp / "state"),
            "--quiet",
            "--json",
            "--checkpoint-interval",
            "2s",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["state"] == "FINISHED", summary
    out = _outputs(stream_input["bootstrap"], topics)
    print(
        f"\nreference run: {time.monotonic() - started:.1f} s, {len(out['scores'])} scores, "
        f"{len(out['alerts'])} alerts, {len(out['dead'])} dead letters ({summary['name']})"
    )
    return out


def test_every_input_is_accounted_for(stream_input, reference_run):
    scores, alerts, dead = reference_run["scores"], reference_run["alerts"], reference_run["dead"]
    ids = [s["transaction_id"] for s in scores]
    assert len(ids) == len(set(ids)) == N_TRANSACTIONS == stream_input["transactions"]
    tx_dead = [
        m for m in dead if m.headers.get("fraudpipe.source.topic") == stream_input["topics"].transactions.encode()
    ]
    # Every record written to the transactions topic: scored (below or above the threshold) or a dead letter.
    assert len(scores) + len(tx_dead) == stream_input["transactions"] + len(stream_input["bad"])
    above = {s["transaction_id"] for s in scores if s["is_fraud"]}
    assert {a["transaction"]["transaction_id"] for a in alerts} == above
    assert len(alerts) == len(above) > 0
    assert len(dead) == len(stream_input["bad"]) + len(stream_input["bad_labels"])


def test_alert_features_and_decisions_equal_the_offline_computation(transactions, trained_model, reference_run):
    from fraudpipeline.features import FEATURE_NAMES
    from fraudpipeline.features.offline import compute_features
    from fraudpipeline.model import load_export

    offline = compute_features(transactions)
    by_id = {str(t): i for i, t in enumerate(transactions["transaction_id"])}
    booster, meta = load_export(trained_model["export"])
    probs = booster.inplace_predict(offline.to_numpy(dtype=np.float32))
    expected = {str(transactions["transaction_id"][i]) for i in np.flatnonzero(probs >= meta.threshold)}
    alerts = reference_run["alerts"]
    assert {a["transaction"]["transaction_id"] for a in alerts} == expected
    mismatches = []
    for alert in alerts:
        row = by_id[alert["transaction"]["transaction_id"]]
        online = [alert["features"][name] for name in FEATURE_NAMES]
        if online != offline.iloc[row].tolist():
            mismatches.append((alert["transaction"]["transaction_id"], online, offline.iloc[row].tolist()))
        assert alert["score"] == float(probs[row])
        assert alert["threshold"] == meta.threshold and alert["model_tag"] == trained_model["tag"]
        assert alert["pipeline"] == "test/stream" and alert["decided_at"].endswith("Z")
    assert not mismatches, mismatches[:3]
    # Scores below the threshold too: every one equals the offline model's probability.
    for s in reference_run["scores"][:5000]:
        assert s["score"] == float(probs[by_id[s["transaction_id"]]])


def test_garbage_lands_in_the_dead_letter_topic_with_its_reason(stream_input, reference_run):
    dead = reference_run["dead"]
    by_value = {m.value: m for m in dead}
    for key, value, field in stream_input["bad"] + stream_input["bad_labels"]:
        m = by_value.get(value)
        assert m is not None, f"no dead letter for {value[:60]!r}"
        assert m.key == key  # original key and bytes, untouched
        assert m.headers[H_FIELD].decode() == field, m.headers
        reason = m.headers[H_REASON].decode()
        assert field in reason and len(reason) > 20, reason
        assert m.headers["fraudpipe.source.partition"].isdigit() and m.headers["fraudpipe.source.offset"].isdigit()
        assert m.headers["fraudpipe.failed.at"].endswith(b"Z") and m.headers["fraudpipe.pipeline"] == b"test/stream"
    kinds = {m.headers["fraudpipe.error.kind"] for m in dead}
    assert kinds == {b"invalid-record", b"refused"}


def test_kill_and_restart_from_the_checkpoint_commits_the_same_alerts(
    stream_input, trained_model, reference_run, run_job, tmp_path
):
    """SIGKILL mid-stream, then a start from the same state folder: the committed alerts are exactly the
    reference's, none lost, none doubled. Split layout, parallelism 2, so that the restore covers it too."""
    bootstrap, topics = stream_input["bootstrap"], stream_input["topics"]
    alerts_topic = f"{topics.alerts}.killed"
    create_topics(bootstrap, [alerts_topic])
    killed_topics = Topics(
        topics.transactions, topics.labels, alerts_topic, f"{topics.dead_letter}.killed", f"{topics.scores}.killed"
    )
    create_topics(bootstrap, [killed_topics.dead_letter, killed_topics.scores])
    args = job_args(
        bootstrap,
        killed_topics,
        "killed",
        trained_model,
        extra=("--bounded", "--parallelism", "2", "--checkpoint-interval", "1s"),
    )
    state = tmp_path / "killed-state"
    first = run_job(args, "first", state)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # wait until a checkpoint has committed part of the output
        committed = len(read_all(bootstrap, killed_topics.scores, idle_s=0.5))
        if committed >= 10_000:
            break
        assert first.proc.poll() is None, f"the job ended before it was killed:\n{first.tail()}"
        time.sleep(0.5)
    assert committed < N_TRANSACTIONS, "the job finished before it could be killed mid-stream"
    first.kill()
    assert list(state.glob("checkpoints/*/chk-*/_metadata")), "no checkpoint was kept"
    summary = run_job(args, "second", state).wait()
    assert summary["restored_from"], summary
    out = _outputs(bootstrap, killed_topics)
    ids = [a["transaction"]["transaction_id"] for a in out["alerts"]]
    assert len(ids) == len(set(ids)), "an alert was committed twice"
    assert sorted(ids) == sorted(a["transaction"]["transaction_id"] for a in reference_run["alerts"])
    score_ids = [s["transaction_id"] for s in out["scores"]]
    assert len(score_ids) == len(set(score_ids)) == N_TRANSACTIONS
    print(f"\nkilled at {committed} committed scores; after the restart {len(ids)} alerts, as the reference")


def test_model_whose_tag_differs_is_refused(stream_input, trained_model, tmp_path):
    export = tmp_path / "other-model"
    export.mkdir()
    meta = json.loads((trained_model["export"] / "model.json").read_text())
    meta["tag"] = "fraud-xgb:someotherversion"
    (export / "model.json").write_text(json.dumps(meta))
    (export / "model.ubj").write_bytes((trained_model["export"] / "model.ubj").read_bytes())
    args = job_args(
        stream_input["bootstrap"],
        stream_input["topics"],
        "mismatch",
        {**trained_model, "export": export},
        extra=("--bounded",),
    )
    done = subprocess.run(
        [sys.executable, "-m", "fraudpipeline.cli", "stream", "run", *args, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "model tags differ" in done.stderr
    assert trained_model["tag"] in done.stderr and "fraud-xgb:someotherversion" in done.stderr


def test_remote_scoring_survives_a_restart_of_the_scoring_service(
    stream_input, trained_model, reference_run, run_job, tmp_path
):
    from fp_devtools.process import free_port

    bootstrap, topics = stream_input["bootstrap"], stream_input["topics"]
    remote = Topics(
        topics.transactions,
        topics.labels,
        f"{topics.alerts}.remote",
        f"{topics.dead_letter}.remote",
        f"{topics.scores}.remote",
    )
    create_topics(bootstrap, [remote.alerts, remote.dead_letter, remote.scores])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = serve_model(trained_model, port, tmp_path / "serve-1.log")
    try:
        wait_service_ready(url, service)
        job = run_job(
            job_args(
                bootstrap,
                remote,
                "remote",
                trained_model,
                remote_url=url,
                extra=("--bounded", "--checkpoint-interval", "1s"),
            ),
            "remote",
        )
        deadline = time.monotonic() + 300
        while len(read_all(bootstrap, remote.scores, idle_s=0.5)) < 5_000:
            assert time.monotonic() < deadline and job.proc.poll() is None, job.tail()
            time.sleep(0.5)
        stop_service(service)  # the job now retries and holds its input
        time.sleep(3)
        service = serve_model(trained_model, port, tmp_path / "serve-2.log")
        wait_service_ready(url, service)
        summary = job.wait()
        assert summary["counters"].get("remote_retries", 0) > 0 or summary["state"] == "FINISHED"
    finally:
        stop_service(service)
    out = _outputs(bootstrap, remote)
    ids = [a["transaction"]["transaction_id"] for a in out["alerts"]]
    assert len(ids) == len(set(ids)), "an alert was committed twice"
    assert sorted(ids) == sorted(a["transaction"]["transaction_id"] for a in reference_run["alerts"])
    score_ids = {s["transaction_id"] for s in out["scores"]}
    assert len(score_ids) == len(out["scores"]) == N_TRANSACTIONS
    assert {a["model_tag"] for a in out["alerts"]} == {trained_model["tag"]}
