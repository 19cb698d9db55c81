"""Shared pieces of the streaming tests (imported by name: a module called conftest would clash)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
FRAUDPIPE = [sys.executable, "-m", "fraudpipeline.cli"]
N_TRANSACTIONS = 50_000
FIRST_DAY = "2018-08-02"


def bentoml_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDPIPE_")}
    env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"})
    return env


@dataclass
class Topics:
    transactions: str
    labels: str
    alerts: str
    dead_letter: str
    scores: str

    @classmethod
    def named(cls, prefix: str) -> Topics:
        return cls(*(f"{prefix}.{role}" for role in ("transactions", "labels", "alerts", "dead-letter", "scores")))

    def all(self) -> list[str]:
        return [self.transactions, self.labels, self.alerts, self.dead_letter, self.scores]


def job_args(
    bootstrap: str,
    topics: Topics,
    group: str,
    model: dict,
    *,
    remote_url: str | None = None,
    extra: tuple[str, ...] = (),
) -> list[str]:
    args = [
        "--pipeline",
        "test/stream",
        "--bootstrap-servers",
        bootstrap,
        "--transactions-topic",
        topics.transactions,
        "--labels-topic",
        topics.labels,
        "--alerts-topic",
        topics.alerts,
        "--dead-letter-topic",
        topics.dead_letter,
        "--scores-topic",
        topics.scores,
        "--group-id",
        group,
        "--model-tag",
        model["tag"],
    ]
    if remote_url:
        args += ["--scoring-mode", "remote", "--serving-url", remote_url]
    else:
        args += ["--scoring-mode", "embedded", "--model-path", str(model["export"])]
    return [*args, *extra]


class JobProcess:
    """`fraudpipe stream run` in its own process group (so a kill takes its JVM with it)."""

    def __init__(self, args: list[str], state_dir: Path, log: Path):
        self.state_dir = state_dir
        self.log = log
        self.proc = subprocess.Popen(
            [*FRAUDPIPE, "stream", "run", *args, "--state-dir", str(state_dir), "--quiet", "--json"],
            stdout=subprocess.PIPE,
            stderr=open(log, "ab"),
            cwd=REPO,
            start_new_session=True,
            text=True,
        )

    def wait(self, timeout: float = 600) -> dict:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the job did not finish in {timeout:.0f} s; log {self.log}:\n{self.tail()}") from None
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}; log {self.log}:\n{self.tail()}"
        return json.loads(out.strip().splitlines()[-1])

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def serve_model(model: dict, port: int, log: Path) -> subprocess.Popen:
    """`bentoml serve` of the trained model (its own session: stopping it stops its workers)."""
    from fp_devtools.bench.serving.processes import serve_command

    env = {**bentoml_env(model["home"]), "FRAUDPIPE_MODEL_TAG": model["tag"]}
    return subprocess.Popen(
        serve_command(port), env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_service_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "bentoml serve exited"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready in {timeout} s")


def stop_service(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
