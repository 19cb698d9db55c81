"""Apache Kafka in KRaft mode (one combined broker+controller) from Maven Central jars."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fp_devtools import argv, cache
from fp_devtools.process import ServerFailed, log_tail, port_open, spawn, stopped_on_failure, wait_healthy

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.frauddetect.local</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <!-- Kafka's published POMs carry no SLF4J binding: without one the broker logs nothing. -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""


def maven_repo() -> Path:
    return cache.cache_dir("m2")


def classpath(version: str = cache.KAFKA_VERSION) -> str:
    """The broker's classpath, resolved by Maven once and cached."""
    home = cache.cache_dir("kafka", version)
    cp_file = home / "kafka.cp"
    if cp_file.exists():
        cp = cp_file.read_text().strip()
        if cp and all(Path(j).exists() for j in cp.split(":")):
            return cp
    cache.require("java")
    mvn = cache.require("mvn")
    (home / "pom.xml").write_text(_POM.format(kafka=version, slf4j=cache.SLF4J_VERSION))
    tmp = home / "kafka.cp.tmp"
    run = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(home / "pom.xml"),
            f"-Dmaven.repo.local={maven_repo()}",
            f"{cache.MAVEN_DEPENDENCY_PLUGIN}:build-classpath",
            f"-Dmdep.outputFile={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise ServerFailed(
            f"resolving org.apache.kafka:kafka_2.13:{version} with Maven failed:\n"
            f"{run.stdout[-3000:]}{run.stderr[-3000:]}"
        )
    tmp.rename(cp_file)
    return cp_file.read_text().strip()


def _answers(bootstrap: str) -> bool:
    if not port_open(int(bootstrap.rsplit(":", 1)[1])):
        return False  # asking the client earlier only fills the output with connection errors
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:  # the Kafka client is an extra; an open port is the next best check
        return True
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
    md = admin.list_topics(timeout=2)
    return bool(md.brokers)


def format_storage(java: str, cp: str, cluster_id: str, props: Path, log: Path) -> None:
    """Format the broker's storage (KRaft) with `cluster_id`; its output goes to the broker's log."""
    fmt = subprocess.run(argv.kafka_format(java, cp, cluster_id, props), capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"$ StorageTool format --cluster-id={cluster_id}\n{fmt.stdout}{fmt.stderr}")
    if fmt.returncode != 0:
        raise ServerFailed(
            f"kafka: formatting its storage failed (exit {fmt.returncode}); last lines of {log}:\n{log_tail(log)}",
            server="kafka",
            log=log,
        )


def start(
    state_dir: Path,
    port: int | None = None,
    controller_port: int | None = None,
    procs_out: list[subprocess.Popen] | None = None,
) -> dict:
    """Format storage and start the broker; returns its env.json entries once it answers.

    Given the ports of a broker stopped earlier in the same `state_dir`, this restarts that
    broker with its data (storage already formatted is kept), at the same address. The process
    is appended to `procs_out` (a caller that watches it for its exit code).
    """
    java = cache.require("java")
    cp = classpath()
    home = state_dir / "kafka"
    data = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    if not (port and controller_port):
        port, controller_port = argv.free_ports(2)
    props = home / "server.properties"
    props.write_text(argv.kafka_properties(data, port, controller_port))
    log = state_dir / "logs" / "kafka.log"
    if not (data / "meta.properties").exists():  # storage of an earlier start is kept, with its data
        format_storage(java, cp, argv.kafka_cluster_id(), props, log)
    bootstrap = f"127.0.0.1:{port}"
    with stopped_on_failure() as procs:
        proc = spawn(argv.kafka_server(java, cp, props), log)
        procs.append(proc)
        if procs_out is not None:
            procs_out.append(proc)
        waited = wait_healthy("kafka", proc, lambda: _answers(bootstrap), log, timeout=90)
    return {
        "kafka": {
            "bootstrap": bootstrap,
            "version": cache.KAFKA_VERSION,
            "started_in_s": round(waited, 2),
            "controller_port": controller_port,
        },
        "pids": {"kafka": proc.pid},
        "logs": {"kafka": str(log)},
    }
