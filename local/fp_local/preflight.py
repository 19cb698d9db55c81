"""Everything `fraudpipe up` needs, checked before anything downloads or starts.

Each problem names what is missing and the fix; all of them are reported at once.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fp_local import procs

MIN_JAVA = 17
# Kafka's segments (64 MB each, preallocated index files), checkpoints, Prometheus' data, logs.
MIN_FREE_STATE_BYTES = 1 << 30
# Kafka's jars, the Flink connector and the Prometheus package, when not cached yet.
MIN_FREE_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}: {self.fix}"


@dataclass(frozen=True)
class PortWanted:
    port: int
    what: str  # e.g. "the ingest API (spec.kafka.bridge.port)"
    fix: str  # e.g. "pass --ingest-port N"


def java_major(text: str) -> int | None:
    """17 from `openjdk version "17.0.15" ...`, 8 from `java version "1.8.0_402"`."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def check_java() -> list[Problem]:
    java = shutil.which("java")
    fix = f"install a JDK {MIN_JAVA}+ (Debian: apt-get install openjdk-17-jre-headless) and put `java` on PATH"
    if java is None:
        return [Problem("Java is not installed (Kafka and Flink run on it)", fix)]
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Problem(f"`{java} -version` failed ({exc})", fix)]
    major = java_major(out.stderr + out.stdout)
    if major is None or major < MIN_JAVA:
        first = (out.stderr or out.stdout).strip().splitlines()[:1]
        return [Problem(f"Java {MIN_JAVA}+ is needed, {java} is {first[0] if first else 'of unknown version'}", fix)]
    return []


def kafka_cached() -> bool:
    from fp_devtools import cache

    cp = cache.cache_root() / "kafka" / cache.KAFKA_VERSION / "kafka.cp"
    if not cp.is_file():
        return False
    jars = cp.read_text().strip().split(":")
    return bool(jars) and all(Path(j).exists() for j in jars)


def connector_cached() -> bool:
    from fp_flink.connector import ENV_VAR, cache_root, jar_name

    given = os.environ.get(ENV_VAR)
    if given:
        return Path(given).is_file()
    return (cache_root() / "flink" / "jars" / jar_name()).is_file()


def prometheus_ready() -> bool:
    from fp_devtools import prometheus

    return bool(os.environ.get("FRAUDPIPE_PROMETHEUS_DIR")) or prometheus._extracted() is not None


def check_downloads() -> tuple[list[Problem], bool]:
    """Problems, and whether anything must be downloaded."""
    problems: list[Problem] = []
    need_maven = not (kafka_cached() and connector_cached())
    if need_maven and shutil.which("mvn") is None:
        problems.append(
            Problem(
                "Maven is not installed and Kafka's jars or the Flink Kafka connector are not cached yet",
                "install Maven 3.8+ (Debian: apt-get install maven); it fetches them from Maven Central once",
            )
        )
    need_prometheus = not prometheus_ready()
    if need_prometheus and (shutil.which("apt-get") is None or shutil.which("dpkg") is None):
        problems.append(
            Problem(
                "Prometheus is not cached and this system has no apt-get/dpkg to take it from Debian's package",
                "put prometheus and promtool in a folder and set FRAUDPIPE_PROMETHEUS_DIR to it",
            )
        )
    return problems, need_maven or need_prometheus


def check_python() -> list[Problem]:
    missing = [m for m in ("bentoml", "pyflink", "xgboost", "confluent_kafka", "uvicorn") if not _importable(m)]
    if missing:
        return [
            Problem(
                f"Python packages missing from this environment: {', '.join(missing)}",
                "run `make dev` (the locked environment in .venv) and use .venv/bin/fraudpipe",
            )
        ]
    return []


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _free_bytes(path: Path) -> int:
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk(state_dir: Path, cache_dir: Path | None) -> list[Problem]:
    problems = []
    free = _free_bytes(state_dir)
    if free < MIN_FREE_STATE_BYTES:
        problems.append(
            Problem(
                f"only {free / 2**20:.0f} MiB free for the state folder {state_dir} (Kafka's data, checkpoints, "
                f"logs need about {MIN_FREE_STATE_BYTES >> 20} MiB)",
                "free some disk space, or pass --state-dir DIR on a disk with room",
            )
        )
    if cache_dir is not None:
        free = _free_bytes(cache_dir)
        if free < MIN_FREE_CACHE_BYTES:
            problems.append(
                Problem(
                    f"only {free / 2**20:.0f} MiB free for the download cache {cache_dir} (about "
                    f"{MIN_FREE_CACHE_BYTES >> 20} MiB needed)",
                    "free some disk space, or set FRAUDPIPE_CACHE to a folder on a disk with room",
                )
            )
    return problems


def check_ports(wanted: list[PortWanted]) -> list[Problem]:
    problems = []
    for w in wanted:
        if not procs.port_free(w.port):
            problems.append(Problem(f"port {w.port}, for {w.what}, is in use by {procs.who_listens(w.port)}", w.fix))
    return problems
