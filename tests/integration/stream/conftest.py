"""Fixtures of the streaming tests: the connector jar, a trained model, handbook transactions, a job runner.

The model is trained by `fraudpipe train --quick` into its own BentoML store and exported for
the embedded mode, so embedded and remote scoring use the very same booster. The transactions are
50,000 rows of the regenerated handbook data set (or $FRAUDPIPE_DATA), replayed with their labels
one day of event time later: well before the 7 days after which a label first counts, so the
features the job computes must equal the offline ones exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import ci_skip_policy
import pytest
from stream_helpers import FIRST_DAY, FRAUDPIPE, N_TRANSACTIONS, REPO, JobProcess, bentoml_env


@pytest.fixture(scope="session")
def connector_jar() -> Path:
    from fp_flink.connector import ConnectorMissing, kafka_connector_jar

    try:
        return kafka_connector_jar()
    except ConnectorMissing as exc:
        if ci_skip_policy.in_ci():
            raise
        pytest.skip(f"{exc} (`make servers` fetches it)")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> dict:
    """{"tag", "export", "home", "threshold"}: one model, in a BentoML store and exported."""
    root = tmp_path_factory.mktemp("stream-model")
    home, export = root / "bentoml", root / "export"
    env = bentoml_env(home)
    for name in ("FRAUDPIPE_DATA", "FRAUDPIPE_CACHE"):  # the data set, else where its regenerated copy is
        if os.environ.get(name):
            env[name] = os.environ[name]
    done = subprocess.run(
        [*FRAUDPIPE, "train", "--quick", "--export", str(export), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    meta = json.loads((export / "model.json").read_text())
    assert meta.get("tag") == summary["model_tag"], meta
    return {"tag": summary["model_tag"], "export": export, "home": home, "threshold": meta["threshold"]}


@pytest.fixture(scope="session")
def transactions():
    """50,000 transactions in event-time order ($FRAUDPIPE_DATA, else the regenerated handbook set)."""
    from fraudpipeline.data import resolve_transactions

    table, _source = resolve_transactions(None, FIRST_DAY, "2018-08-31")
    assert len(table) >= N_TRANSACTIONS, f"only {len(table)} transactions from {FIRST_DAY}"
    return table.iloc[:N_TRANSACTIONS].reset_index(drop=True)


@pytest.fixture
def run_job(tmp_path):
    """run_job(args, name) -> JobProcess started; every process is killed at the end of the test."""
    started: list[JobProcess] = []

    def start(args: list[str], name: str = "job", state_dir: Path | None = None) -> JobProcess:
        job = JobProcess(args, state_dir or tmp_path / f"{name}-state", tmp_path / f"{name}.log")
        started.append(job)
        return job

    yield start
    for job in started:
        if job.proc.poll() is None:
            job.kill()
