"""A real `bentoml serve fp_serving.service:FraudScorer` on a free loopback port.

The model is a small synthetic one saved into a temporary BENTOML_HOME by a subprocess
(`python -m fp_devtools.bench.serving.synthetic_model`), so this test process never imports bentoml with a
store of its own. Readiness is polled on /readyz with a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fp_devtools.bench.serving.processes import ServerProcess, free_port, serve_command


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"})
    return env


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> dict:
    """{"home", "tag", "booster_file"}: a synthetic fraud-xgb model in its own store."""
    root = tmp_path_factory.mktemp("serving-store")
    home, booster_file = root / "bentoml", root / "model.ubj"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fp_devtools.bench.serving.synthetic_model",
            "--trees",
            "20",
            "--depth",
            "4",
            "--threshold",
            "0.5",
            "--export",
            str(booster_file),
        ],
        env=base_env(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {"home": home, "tag": json.loads(done.stdout)["tag"], "booster_file": booster_file}


def start_service(model_store: dict, tmp_path: Path, **extra_env: str) -> tuple[ServerProcess, str]:
    port = free_port()
    env = {**base_env(model_store["home"]), "FRAUDPIPE_MODEL_TAG": model_store["tag"], **extra_env}
    server = ServerProcess(
        "bentoml serve",
        serve_command(port),
        env,
        tmp_path / f"serve-{port}.log",
    ).start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def launch():
    """start_service(model_store, tmp_path, **env) -> (ServerProcess, url); the caller stops it."""
    return start_service


@pytest.fixture(scope="session")
def store_env():
    """base_env(home) -> a clean environment (no FRAUDPIPE_*) pointing at that store."""
    return base_env


@pytest.fixture(scope="module")
def service(model_store, tmp_path_factory):
    """The service with the model's own threshold and one worker: {"url", "server", ...}."""
    server, url = start_service(model_store, tmp_path_factory.mktemp("serve"))
    try:
        server.wait_ready(url + "/readyz", deadline_s=120)
        yield {"url": url, "server": server, **model_store}
    finally:
        server.stop()
