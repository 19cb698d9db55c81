"""The Flink Kafka connector jar for a local run: given, cached, or fetched by Maven by its name.

The Flink image has it in /opt/flink/lib; a local mini-cluster needs it on `pipeline.jars`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

KAFKA_CONNECTOR = "org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
ENV_VAR = "FRAUDPIPE_FLINK_CONNECTOR_JAR"


class ConnectorMissing(RuntimeError):
    """The connector jar is not here and Maven could not fetch it; the message says what to do."""


def cache_root() -> Path:
    return Path(os.environ.get("FRAUDPIPE_CACHE", Path.home() / ".cache" / "fraudpipeline"))


def jar_name(coordinate: str = KAFKA_CONNECTOR) -> str:
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


def kafka_connector_jar(explicit: str | None = None) -> Path:
    """The jar's path: `explicit`, $FRAUDPIPE_FLINK_CONNECTOR_JAR, the cache, or a Maven fetch into it."""
    given = explicit or os.environ.get(ENV_VAR)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise ConnectorMissing(
                f"Kafka connector jar not found at {path} (from {'--connector-jar' if explicit else ENV_VAR})"
            )
        return path
    folder = cache_root() / "flink" / "jars"
    path = folder / jar_name()
    if path.is_file():
        return path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConnectorMissing(
            f"the Flink Kafka connector ({KAFKA_CONNECTOR}) is not in {folder} and Maven is "
            f"not installed to fetch it: install Maven 3.8+ (Debian: apt-get install maven), "
            f"or pass --connector-jar PATH"
        )
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            f"-Dmaven.repo.local={cache_root() / 'm2'}",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={KAFKA_CONNECTOR}",
            f"-DoutputDirectory={folder}",
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0 or not path.is_file():
        raise ConnectorMissing(f"Maven could not fetch {KAFKA_CONNECTOR}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return path
