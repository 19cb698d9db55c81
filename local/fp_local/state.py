"""The state folder of a local pipeline and `local.json`, the record of what `up` started.

One folder holds everything: the Kafka data, Flink's checkpoints and savepoints, Prometheus'
data, the exported model, the logs, and `local.json` (every process with its pid, port and URL),
which `down`, `status` and `alerts` read.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(".fraudpipe/local")
RECORD = "local.json"
# Stop order: the supervisor first (or it would start again what is being stopped), then the input,
# the job (its savepoint needs Kafka) before Kafka, Kafka last.
STOP_ORDER = ("supervisor", "replay", "ui", "ingest", "stream", "serving", "prometheus", "kafka")


class StateError(RuntimeError):
    """No state folder to act on, or several; the message says which to name."""


class NoPipeline(StateError):
    """No state folder at all under .fraudpipe/local/."""


def default_state_dir(name: str) -> Path:
    return ROOT / name


def record_path(state_dir: Path) -> Path:
    return Path(state_dir) / RECORD


def read(state_dir: Path) -> dict[str, Any]:
    p = record_path(state_dir)
    if not p.is_file():
        return {}
    return json.loads(p.read_text())


def write(state_dir: Path, record: dict[str, Any]) -> None:
    p = record_path(state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, p)


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """`up`, the supervisor and `down` each change local.json: one at a time, whole records only."""
    lock = Path(state_dir) / (RECORD + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def update(state_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read local.json, apply `change` to it and write it back, under the record's lock."""
    with _locked(state_dir):
        record = read(state_dir)
        change(record)
        write(state_dir, record)
        return record


def resolve(state_dir: Path | None, pipeline_file: Path | None) -> Path:
    """The state folder a command acts on: given, the file's default, or the only one there is."""
    if state_dir is not None:
        return Path(state_dir).resolve()
    if pipeline_file is not None:
        from fraudpipeline.spec import load_pipeline

        return default_state_dir(load_pipeline(pipeline_file).name).resolve()
    found = sorted(p.parent for p in ROOT.glob(f"*/{RECORD}"))
    if len(found) == 1:
        return found[0].resolve()
    if not found:
        raise NoPipeline(
            f"no local pipeline under {ROOT}/: start one with `fraudpipe up -f FILE`, or name its folder "
            "with --state-dir DIR"
        )
    raise StateError(
        f"{len(found)} local pipelines under {ROOT}/ ({', '.join(p.name for p in found)}): name one with "
        "-f FILE or --state-dir DIR"
    )
