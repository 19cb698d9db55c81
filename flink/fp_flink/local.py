"""`fraudpipe stream run`: the job in a local Flink mini-cluster, with checkpoints in a state folder.

The job is the same as on a cluster (fp_flink.job.build_job), with the cluster's part of the
configuration set here: thread mode needs this interpreter and its site-packages, the Kafka
connector jar goes on `pipeline.jars`, checkpoints go to DIR/checkpoints and are kept when the
job is cancelled or killed, and a start resumes from the newest complete checkpoint there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import site
import socket
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from fp_flink.config import JobConfig, JobConfigError, config_from_namespace, duration_ms, parser

log = logging.getLogger("fp_flink.local")

METRIC_PREFIX = "flink_taskmanager_job_task_operator_fraudpipe_"
COUNTERS = ("scored", "alerts", "dead_letters", "refused", "labels", "labels_pending", "remote_retries")


@dataclass(frozen=True)
class LocalOptions:
    state_dir: Path
    parallelism: int = 1
    checkpoint_interval_ms: int = 5_000
    checkpoint_timeout_ms: int = 600_000  # Flink's default
    metrics_port: int | None = None  # None: a free port
    connector_jar: str | None = None
    restore: bool = True


def local_parser() -> argparse.ArgumentParser:
    p = parser()
    p.prog = "fraudpipe stream run"
    p.description = (
        "Run the FraudPipeline streaming job in a local Flink mini-cluster (same arguments as on a cluster)."
    )
    g = p.add_argument_group("local run")
    g.add_argument("--state-dir", required=True, help="checkpoints, logs and the run record live here")
    g.add_argument("--parallelism", type=int, default=1)
    g.add_argument(
        "--checkpoint-interval",
        default="5s",
        help="alerts become visible to read_committed consumers at each checkpoint (cluster default: 30s)",
    )
    g.add_argument(
        "--checkpoint-timeout",
        default="10min",
        help="a checkpoint not complete by then fails the job (which restarts from the last one); "
        "remote scoring's --scoring-max-wait must be shorter",
    )
    g.add_argument("--metrics-port", type=int, default=None, help="Prometheus reporter port (default: a free one)")
    g.add_argument("--connector-jar", default=None, help="flink-sql-connector-kafka jar (default: cache, or Maven)")
    g.add_argument("--no-restore", action="store_true", help="start fresh even if DIR holds a checkpoint")
    g.add_argument("--json", action="store_true", help="print the final counts as JSON on stdout")
    g.add_argument("--quiet", action="store_true", help="no live counters on stderr")
    return p


def latest_checkpoint(state_dir: Path) -> Path | None:
    """The newest complete checkpoint or savepoint (a folder with its _metadata) of any earlier run."""
    found = [
        m.parent
        for m in (*state_dir.glob("checkpoints/*/chk-*/_metadata"), *state_dir.glob("savepoints/savepoint-*/_metadata"))
    ]
    if not found:
        return None
    return max(found, key=lambda p: (p.joinpath("_metadata").stat().st_mtime, p.name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_configuration(opts: LocalOptions, jar: Path):
    from pyflink.common import Configuration

    from fp_flink.job import job_configuration

    state = opts.state_dir.resolve()
    conf: Configuration = job_configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("pipeline.jars", jar.resolve().as_uri())
    conf.set_string("parallelism.default", str(opts.parallelism))
    conf.set_string("execution.checkpointing.interval", f"{opts.checkpoint_interval_ms} ms")
    conf.set_string("execution.checkpointing.timeout", f"{opts.checkpoint_timeout_ms} ms")
    conf.set_string("execution.checkpointing.storage", "filesystem")
    conf.set_string("execution.checkpointing.dir", (state / "checkpoints").as_uri())
    conf.set_string("execution.checkpointing.savepoint-dir", (state / "savepoints").as_uri())
    conf.set_string("execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION")
    conf.set_string("execution.checkpointing.num-retained", "2")
    conf.set_string("state.backend.type", "hashmap")
    # What a cluster does by default with checkpointing (exponential-delay), with a bound on the
    # attempts so that a job failing for good ends (after 3 minutes of pauses) instead of looping:
    # 1, 2, 4, 8, 16, then 30 s between attempts; ten in a row without 5 minutes of health in between.
    # A scoring service down for longer than --scoring-max-wait fails the task; each restart
    # resumes from the last checkpoint, so the job picks up by itself once the service is back.
    conf.set_string("restart-strategy.type", "exponential-delay")
    conf.set_string("restart-strategy.exponential-delay.initial-backoff", "1 s")
    conf.set_string("restart-strategy.exponential-delay.backoff-multiplier", "2.0")
    conf.set_string("restart-strategy.exponential-delay.max-backoff", "30 s")
    conf.set_string("restart-strategy.exponential-delay.reset-backoff-threshold", "5 min")
    conf.set_string("restart-strategy.exponential-delay.attempts-before-reset-backoff", "10")
    conf.set_string(
        "metrics.reporter.prom.factory.class", "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    )
    conf.set_string("metrics.reporter.prom.port", str(opts.metrics_port))
    conf.set_string("rest.bind-address", "127.0.0.1")
    restored = latest_checkpoint(state) if opts.restore else None
    if restored is not None:
        conf.set_string("execution.state-recovery.path", restored.as_uri())
    return conf, restored


def _thread_mode_path() -> None:
    # Thread mode embeds this interpreter through pemja, which imports pyflink and the project from
    # PYTHONPATH (not from the virtualenv's sys.path): without it, "No module named 'pemja'".
    # An editable install finds packages through an import hook that the embedded interpreter
    # does not run, so the folders holding the project's packages are named too.
    import fp_flink
    import fraudpipeline

    roots = [str(Path(m.__file__).resolve().parents[1]) for m in (fp_flink, fraudpipeline)]
    paths = [*roots, *site.getsitepackages(), *(p for p in sys.path if p and Path(p).is_dir())]
    current = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*paths, *filter(None, current.split(os.pathsep))]))


def _reporter_on_classpath() -> None:
    # The mini-cluster loads no plugins, so the Prometheus reporter (shipped in PyFlink's plugins/
    # folder) must be on the JVM's classpath; PyFlink's gateway launcher adds $HADOOP_CLASSPATH
    # to it, the one hook it offers.
    import pyflink

    jars = sorted((Path(pyflink.__file__).parent / "plugins" / "metrics-prometheus").glob("*.jar"))
    current = [p for p in os.environ.get("HADOOP_CLASSPATH", "").split(os.pathsep) if p]
    os.environ["HADOOP_CLASSPATH"] = os.pathsep.join(dict.fromkeys([*current, *map(str, jars)]))


@dataclass
class Counters:
    values: dict[str, float] = field(default_factory=dict)
    scraped_at: float = 0.0

    def scrape(self, port: int) -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return
        sums: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith(METRIC_PREFIX):
                name, _, value = line.rpartition(" ")
                short = name[len(METRIC_PREFIX) :].split("{", 1)[0]
                if short in COUNTERS:
                    sums[short] = sums.get(short, 0.0) + float(value)
        if sums:
            self.values = sums
            self.scraped_at = time.time()


def input_end_offsets(config: JobConfig) -> dict[tuple[str, int], int]:
    """The latest offset of every input partition now: where a bounded run stops."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": config.bootstrap_servers, "group.id": config.group_id})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                ends = {}
                for topic in (config.transactions_topic, config.labels_topic):
                    meta = consumer.list_topics(topic, timeout=15).topics[topic]
                    if meta.error is not None:
                        raise KafkaException(meta.error)
                    for p in meta.partitions:
                        ends[(topic, p)] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
                return ends
            except KafkaException as exc:  # a new topic's leaders still being elected, or no such topic
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cannot read the input topics' end offsets: {exc}") from None
                time.sleep(0.5)
    finally:
        consumer.close()


def caught_up(config: JobConfig, ends: dict[tuple[str, int], int]) -> bool:
    """True once the offsets the job committed (on completed checkpoints) reach `ends` everywhere."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": config.bootstrap_servers})
    request = ConsumerGroupTopicPartitions(config.group_id, [TopicPartition(t, p) for (t, p) in ends])
    try:
        result = admin.list_consumer_group_offsets([request])[config.group_id].result(10)
    except Exception:  # noqa: BLE001 - not yet known: ask again later
        return False
    committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
    return all(end == 0 or committed.get(key, -1) >= end for key, end in ends.items())


def run(config: JobConfig, opts: LocalOptions, show_progress: bool = True) -> dict:
    """Run until stopped, or with `config.bounded` until the input that was there at start is done.

    Both ends go through stop-with-savepoint, so that every output is committed and the next start
    resumes from where this one stopped: SIGINT/SIGTERM stop the job without draining; a bounded
    run, once the offsets committed on checkpoints reach the input's end, stops it with a drain
    (the final watermark scores the rows still waiting for their batch). The Kafka connector's own
    bounded mode is not used here: a job restored from a checkpoint never ends in it.
    """
    from dataclasses import replace

    from pyflink.datastream import StreamExecutionEnvironment

    from fp_flink.connector import kafka_connector_jar
    from fp_flink.job import build_job, check_model

    check_model(config)  # a wrong model is refused before a JVM starts
    if config.scoring_mode == "remote" and config.scoring_max_wait_ms >= opts.checkpoint_timeout_ms:
        raise JobConfigError(
            f"--scoring-max-wait ({config.scoring_max_wait_ms} ms) must be shorter than --checkpoint-timeout "
            f"({opts.checkpoint_timeout_ms} ms): a task waiting for the scoring service holds every checkpoint"
        )
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    if opts.metrics_port is None:
        opts = LocalOptions(**{**opts.__dict__, "metrics_port": free_port()})
    jar = kafka_connector_jar(opts.connector_jar)
    ends = input_end_offsets(config) if config.bounded else None
    _thread_mode_path()
    _reporter_on_classpath()
    # Flink's own log (JobManager, TaskManager, connectors) goes beside the checkpoints.
    os.environ["FLINK_LOG_DIR"] = str((opts.state_dir / "log").resolve())
    conf, restored = local_configuration(opts, jar)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    name = build_job(env, replace(config, bounded=False))
    started = time.time()
    client = env.execute_async(name)
    job_id = str(client.get_job_id())
    record = {
        "job_id": job_id,
        "name": name,
        "pid": os.getpid(),
        "metrics_port": opts.metrics_port,
        "restored_from": str(restored) if restored else None,
        "started_at": started,
    }
    (opts.state_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info("job %s started (%s)%s", job_id, name, f", restored from {restored}" if restored else "")

    stopping = threading.Event()
    savepoints = (opts.state_dir / "savepoints").resolve().as_uri()
    outcome: dict = {}

    def _stop(drain: bool, why: str) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("%s: stopping the job with a savepoint%s", why, " (drain)" if drain else "")

        def _go() -> None:
            try:
                path = _stop_with_savepoint(client, drain, savepoints)
                outcome["savepoint"] = path
                outcome["stopped"] = "FINISHED" if drain else "STOPPED"
                log.info("savepoint %s", path)
            except Exception as exc:  # noqa: BLE001 - fall back to a cancel; the last checkpoint stays
                log.warning("stop with savepoint failed (%s); cancelling", root_cause(exc))
                try:
                    client.cancel().result()
                except Exception:  # noqa: BLE001 - already gone
                    pass

        threading.Thread(target=_go, daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: _stop(False, f"signal {signum}"))

    counters = Counters()
    result = client.get_job_execution_result()
    done = threading.Event()

    def _wait() -> None:
        try:
            result.result()
            outcome["state"] = "FINISHED"
        except Exception as exc:  # noqa: BLE001 - stopped, cancelled or failed: told apart below
            outcome["state"] = "CANCELED" if stopping.is_set() else "FAILED"
            outcome["error"] = root_cause(exc)
        finally:
            done.set()

    threading.Thread(target=_wait, daemon=True).start()
    live = _live_view(show_progress)
    while not done.wait(1.0):
        counters.scrape(opts.metrics_port)
        live(counters, time.time() - started)
        if ends is not None and not stopping.is_set() and caught_up(config, ends):
            _stop(True, "input done")
    live(counters, time.time() - started, final=True)
    for _ in range(50):  # the savepoint's answer may come just after the job's end
        if "stopped" in outcome or not stopping.is_set():
            break
        time.sleep(0.1)
    if "stopped" in outcome:  # ended by stop-with-savepoint: every output is committed
        outcome["state"], outcome["error"] = outcome["stopped"], None
    summary = {
        **record,
        "state": outcome.get("state"),
        "error": outcome.get("error"),
        "savepoint": outcome.get("savepoint"),
        "seconds": round(time.time() - started, 2),
        "counters": counters.values,
    }
    (opts.state_dir / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _stop_with_savepoint(client, drain: bool, directory: str) -> str:
    """JobClient.stopWithSavepoint; PyFlink 2.2's wrapper still calls the two-argument form that
    Flink 2 removed, so the Java method is called with its savepoint format."""
    from pyflink.java_gateway import get_gateway

    fmt = get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    return str(client._j_job_client.stopWithSavepoint(drain, directory, fmt).get())


def root_cause(exc: BaseException) -> str:
    """The innermost 'Caused by' of a Java exception chain (what went wrong, not where it surfaced)."""
    text = str(exc)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if causes:
        return "; ".join(dict.fromkeys(c.removeprefix("Caused by: ")[:400] for c in causes[-3:]))
    return (text.splitlines() or [type(exc).__name__])[0][:500]


def _live_view(enabled: bool):
    if not enabled:
        return lambda counters, elapsed, final=False: None
    from rich.console import Console

    console = Console(stderr=True)
    last = {"t": 0.0, "scored": 0.0}

    def show(counters: Counters, elapsed: float, final: bool = False) -> None:
        v = counters.values
        scored = v.get("scored", 0.0)
        rate = (scored - last["scored"]) / max(elapsed - last["t"], 1e-9) if last["t"] else 0.0
        last.update(t=elapsed, scored=scored)
        line = (
            f"[{elapsed:6.0f} s] scored {scored:,.0f} ({rate:,.0f}/s)  alerts {v.get('alerts', 0):,.0f}  "
            f"dead letters {v.get('dead_letters', 0):,.0f}  labels {v.get('labels', 0):,.0f}"
        )
        console.print(line, end="\n" if final else "\r", highlight=False)

    return show


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from fp_flink.config import JobConfigError
    from fp_flink.connector import ConnectorMissing
    from fp_flink.scoring import ModelMismatch

    try:
        ns = local_parser().parse_args(argv)
        config = config_from_namespace(ns)
        opts = LocalOptions(
            state_dir=Path(ns.state_dir),
            parallelism=ns.parallelism,
            checkpoint_interval_ms=duration_ms(ns.checkpoint_interval, "--checkpoint-interval"),
            checkpoint_timeout_ms=duration_ms(ns.checkpoint_timeout, "--checkpoint-timeout"),
            metrics_port=ns.metrics_port,
            connector_jar=ns.connector_jar,
            restore=not ns.no_restore,
        )
        summary = run(config, opts, show_progress=not ns.quiet)
    except (JobConfigError, ConnectorMissing, ModelMismatch) as exc:
        print(f"fraudpipe stream run: {exc}", file=sys.stderr)
        return 2
    if ns.json:
        print(json.dumps(summary))
    if summary["state"] == "FAILED":
        print(f"fraudpipe stream run: the job failed: {summary['error']}", file=sys.stderr)
        return 1
    return 0
