"""Shared pieces of the local mode's tests (imported by name: a module called conftest would clash)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
FRAUDPIPE = [sys.executable, "-m", "fraudpipeline.cli"]
MODEL_TAG = "fraud-xgb:itlocal"
ARTIFACTS = REPO / ".fraudpipe" / "test-artifacts"

PIPELINE = """\
apiVersion: frauddetect.dev/v1alpha1
kind: FraudPipeline
metadata:
  name: {name}
  namespace: fraud
spec:
  kafka:
    cluster: main
    bridge: {{port: {port}}}
  model:
    image: ghcr.io/frauddetect/fraudpipeline-serving:0.1.0
    modelTag: {tag}
  stream:
    image: ghcr.io/frauddetect/fraudpipeline-flink:0.1.0
    checkpointInterval: {checkpoint}
"""
# Every scored transaction also on a scores topic: what accounts for each input.
SCORES = """\
    topics:
      scores: {{name: fraud.{name}.scores}}
"""


def local_env(bentoml_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "FRAUDPIPE_INGEST_URL")}
    env.update({"BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"})
    return env


@dataclass
class Local:
    """One pipeline file and its state folder, driven through the `fraudpipe` commands."""

    file: Path
    state_dir: Path
    env: dict[str, str]
    ui_port: int
    log: Path

    def run(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*FRAUDPIPE, *args], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        with open(self.log, "a") as f:
            f.write(f"$ fraudpipe {' '.join(args)}\n{done.stdout}{done.stderr}\n(exit {done.returncode})\n")
        if check:
            assert done.returncode == 0, f"fraudpipe {' '.join(args)}: exit {done.returncode}\n{done.stderr[-4000:]}"
        return done

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        return self.run(
            "up",
            "-f",
            str(self.file),
            "--state-dir",
            str(self.state_dir),
            "--detach",
            "--ui-port",
            str(self.ui_port),
            *extra,
        )

    def down(self) -> subprocess.CompletedProcess:
        return self.run("down", "--state-dir", str(self.state_dir), timeout=300)

    def send(self, *args: str) -> subprocess.CompletedProcess:
        return self.run("send", "-f", str(self.file), *args, timeout=60)

    @property
    def record(self) -> dict:
        return json.loads((self.state_dir / "local.json").read_text())

    @property
    def bootstrap(self) -> str:
        return self.record["components"]["kafka"]["bootstrap"]

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def page_state(self) -> dict:
        return httpx.get(f"{self.ui}/api/state", timeout=5).json()

    def alerts(self) -> list[dict]:
        from fp_local.alerts import read

        return list(read(self.bootstrap, self.record["topics"]["alerts"]))

    def flink(self) -> str:
        return self.record["components"]["stream"]["url"]

    def checkpoints(self) -> list[dict]:
        """Completed checkpoints of the running job (newest first), from Flink's REST API."""
        jobs = httpx.get(f"{self.flink()}/jobs/overview", timeout=5).json()["jobs"]
        job = max((j for j in jobs if j["state"] == "RUNNING"), key=lambda j: j["start-time"])
        history = httpx.get(f"{self.flink()}/jobs/{job['jid']}/checkpoints", timeout=5).json()["history"]
        return [c for c in history if c["status"] == "COMPLETED"]

    def wait_checkpoints(self, n: int, after: float, timeout: float = 120) -> None:
        """Until `n` checkpoints triggered after `after` (epoch s) have completed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [c for c in self.checkpoints() if c["trigger_timestamp"] / 1000 > after]
            if len(done) >= n:
                return
            time.sleep(0.5)
        raise AssertionError(f"{n} checkpoint(s) after {after} did not complete within {timeout} s")

    def tail(self, lines: int = 60) -> str:
        out = [self.log.read_text(errors="replace")[-4000:]] if self.log.exists() else []
        for log in sorted((self.state_dir / "logs").glob("*.log")):
            out.append(f"----- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def write_pipeline(
    path: Path, name: str, port: int, checkpoint: str = "2s", tag: str = MODEL_TAG, scores: bool = False
) -> Path:
    text = PIPELINE.format(name=name, port=port, tag=tag, checkpoint=checkpoint)
    if scores:
        text = text.replace("    bridge: {", SCORES.format(name=name) + "    bridge: {", 1)
    path.write_text(text)
    return path


def offline_alerts(export_dir: str | Path, start, count: int) -> set[str]:
    """The offline model's decisions on the first `count` transactions from `start` (features offline)."""
    from datetime import timedelta

    import numpy as np

    from fraudpipeline.data import resolve_transactions
    from fraudpipeline.features.offline import compute_features
    from fraudpipeline.model import load_export

    table, _ = resolve_transactions(None, start, start + timedelta(days=7))
    table = table.iloc[:count]
    booster, meta = load_export(Path(export_dir))
    probs = booster.inplace_predict(compute_features(table).to_numpy(dtype=np.float32))
    return {tx_id(table["transaction_id"].iloc[i]) for i in np.flatnonzero(probs >= meta.threshold)}


def tx_id(value) -> str:
    import numpy as np

    return str(int(value)) if isinstance(value, (int, np.integer)) else str(value)


def transaction(tx_id: str, timestamp: str, card: str, terminal: str, amount: float) -> str:
    return json.dumps(
        {
            "transaction_id": tx_id,
            "timestamp": timestamp,
            "customer_id": card,
            "terminal_id": terminal,
            "amount": amount,
        }
    )
