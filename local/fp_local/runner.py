"""`fraudpipe up` and `fraudpipe down`: start a FraudPipeline's processes on this machine, stop them.

Up: check every prerequisite first (nothing starts while one is missing), fetch what is not cached
(Kafka's jars, the Flink connector, Prometheus), find or train the model, then start Kafka, create
the topics, start Prometheus, the model service, the ingest API and the streaming job together,
and the page's server last; each process is written to `local.json` as soon as it is spawned, so a
failure half-way (or a Ctrl-C) stops exactly what had started. Down stops them in order: the input
first, the job (it takes a savepoint while Kafka still runs), Kafka last, and checks that every
port is free again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from fp_local import modelstore, plan, preflight, procs, state, topics
from fraudpipeline.spec import FraudPipeline

DEFAULT_UI_PORT = 8090
DEFAULT_REPLAY_RATE = "500"
STOP_TIMEOUT_S = {"stream": 150.0, "kafka": 60.0}
HEALTH_TIMEOUT_S = {"ingest": 90.0, "serving": 240.0, "stream": 300.0, "ui": 60.0}


class UpFailed(RuntimeError):
    """A component did not come up; the message names it, its log and what to do."""


@dataclass
class UpOptions:
    pipeline_file: Path
    state_dir: Path | None = None
    detach: bool = False
    replay: bool = False
    rate: str = DEFAULT_REPLAY_RATE
    replay_limit: int | None = None
    ingest_port: int | None = None
    ui_port: int = DEFAULT_UI_PORT
    parallelism: int | None = None


# ------------------------------------------------------------------------------------------ record


def _public(record: dict) -> dict:
    """The record without live objects (keys starting with '_')."""
    out = dict(record)
    out["components"] = {
        name: {k: v for k, v in comp.items() if not k.startswith("_")}
        for name, comp in (record.get("components") or {}).items()
    }
    return out


def _save(state_dir: Path, record: dict) -> None:
    state.write(state_dir, _public(record))


def running_components(record: dict) -> dict[str, dict]:
    return {n: c for n, c in (record.get("components") or {}).items() if procs.alive(c)}


# -------------------------------------------------------------------------------------------- down


def down(state_dir: Path, console: Console | None = None) -> dict[str, Any]:
    """Stop every process `up` recorded in `state_dir`, in order; returns what was stopped and any leftover."""
    console = console or Console(stderr=True)
    record = state.read(state_dir)
    comps = record.get("components") or {}
    stopped, forced = [], []
    for name in state.STOP_ORDER:
        comp = comps.get(name)
        if not comp:
            continue
        was_running = procs.alive(comp) or bool(procs.group_members(comp["pid"]))
        if was_running:
            with console.status(f"stopping {name}{' (savepoint)' if name == 'stream' else ''} ..."):
                forced += [f"{name}: {f}" for f in procs.stop(comp, STOP_TIMEOUT_S.get(name, 30.0))]
            stopped.append(name)
    busy = _busy_ports(record)
    record["components"] = {}
    record["stopped_at"] = time.time()
    if record:
        state.write(state_dir, record)
    return {"stopped": stopped, "forced": forced, "ports_still_in_use": busy}


# The ports each component listens on (keys of local.json's "ports").
_PORTS_OF = {
    "kafka": ("kafka", "kafka_controller"),
    "ingest": ("ingest",),
    "serving": ("serving",),
    "stream": ("flink_metrics",),
    "ui": ("ui",),
}


def _listening_ports(record: dict) -> list[int]:
    """The ports of the components recorded: each must be free once they are stopped."""
    comps = record.get("components") or {}
    ports = record.get("ports") or {}
    out = {ports.get(key) for name in comps for key in _PORTS_OF.get(name, ())}
    out.add((comps.get("prometheus") or {}).get("port"))
    return sorted(p for p in out if p)


def _busy_ports(record: dict, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    ports = _listening_ports(record)
    while True:
        busy = [p for p in ports if not procs.port_free(p)]
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------- up


class Up:
    def __init__(self, p: FraudPipeline, opts: UpOptions, console: Console):
        self.p = p
        self.opts = opts
        self.console = console
        self.state_dir = (opts.state_dir or state.default_state_dir(p.name)).resolve()
        self.logs = self.state_dir / "logs"
        self.record: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.t0 = time.monotonic()

    # -- helpers
    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def _mark(self, step: str) -> None:
        self.timings[step] = round(time.monotonic() - self.t0, 2)

    def _record_component(self, name: str, comp: dict) -> None:
        self.record.setdefault("components", {})[name] = comp
        _save(self.state_dir, self.record)

    # -- steps
    def ports(self, previous: dict) -> plan.Ports:
        """The spec's bridge port, the page's port, and the ports of the last run where still free."""
        from fp_devtools.process import free_port

        def reuse(key: str) -> int:
            port = previous.get(key)
            return port if port and procs.port_free(port) else free_port()

        ui = self.opts.ui_port or previous.get("ui") or free_port()
        return plan.Ports(
            kafka=reuse("kafka"),
            kafka_controller=reuse("kafka_controller"),
            ingest=self.opts.ingest_port or self.p.spec.kafka.bridge.port,
            serving=reuse("serving"),
            flink_metrics=reuse("flink_metrics"),
            ui=ui,
        )

    def check(self, ports: plan.Ports) -> list[preflight.Problem]:
        from fp_devtools import cache

        problems = preflight.check_java() + preflight.check_python()
        download_problems, downloads = preflight.check_downloads()
        problems += download_problems
        problems += preflight.check_disk(self.state_dir, cache.cache_root() if downloads else None)
        problems += preflight.check_ports(
            [
                preflight.PortWanted(
                    ports.ingest,
                    "the ingest API (spec.kafka.bridge.port)"
                    if self.opts.ingest_port is None
                    else "the ingest API (--ingest-port)",
                    "stop that process, or pass --ingest-port N (or change spec.kafka.bridge.port)",
                ),
                preflight.PortWanted(
                    ports.ui, "the live page (--ui-port)", "stop that process, or pass --ui-port N (0: any free port)"
                ),
            ]
        )
        return problems

    def prepare(self) -> None:
        """Kafka's jars, the Flink Kafka connector and Prometheus: fetched once into the cache."""
        from fp_devtools import kafka, prometheus
        from fp_flink.connector import kafka_connector_jar

        steps: list[tuple[str, Callable[[], Any], bool]] = [
            ("Kafka's jars (Maven Central)", kafka.classpath, preflight.kafka_cached()),
            ("the Flink Kafka connector (Maven Central)", kafka_connector_jar, preflight.connector_cached()),
            ("Prometheus (Debian's package)", prometheus.binaries, preflight.prometheus_ready()),
        ]
        for what, fetch, cached in steps:
            if cached:
                fetch()
                continue
            started = time.monotonic()
            with self.console.status(f"fetching {what} into the cache, once ..."):
                fetch()
            self.say(f"fetched {what} in {time.monotonic() - started:.0f} s")
        self._mark("prepared")

    def model(self) -> dict:
        """Find the spec's model tag in the BentoML store, or train it; export it for the job."""
        tag = self.p.spec.model.model_tag
        home = modelstore.store_home()
        export_dir = self.state_dir / "model" / tag.replace(":", "-")
        trained = False
        if not modelstore.in_store(home, tag):
            self.say(
                f"model [bold]{tag}[/bold] is not in the BentoML store at {home}: training it now on "
                "the handbook data (or the simulator) with `fraudpipe train --quick`, usually under a minute"
            )
            started = time.monotonic()
            summary = modelstore.train(tag, home, export_dir, self.logs / "train.json")
            self.say(
                f"trained {tag} in {time.monotonic() - started:.0f} s: test AUC {summary['auc']}, average precision "
                f"{summary['ap']}, threshold {summary['threshold']:.4f} (data: {summary.get('data')})"
            )
            trained = True
        elif modelstore.exported(export_dir, tag) is None:
            with self.console.status(f"exporting {tag} from the BentoML store for the streaming job ..."):
                modelstore.export(tag, home, export_dir)
        meta = modelstore.exported(export_dir, tag)
        if meta is None:
            raise UpFailed(f"the export of {tag} in {export_dir} is not readable: delete that folder and run up again")
        spec_threshold = self.p.spec.model.threshold
        self._mark("model")
        return {
            "tag": tag,
            "bentoml_home": str(home),
            "export": str(export_dir),
            "trained_now": trained,
            "threshold": spec_threshold if spec_threshold is not None else meta.threshold,
            "threshold_source": "spec" if spec_threshold is not None else "model",
        }

    def start_kafka(self, ports: plan.Ports) -> str:
        from fp_devtools import kafka

        with self.console.status("starting Kafka ..."):
            env = kafka.start(self.state_dir, port=ports.kafka, controller_port=ports.kafka_controller)
        pid = env["pids"]["kafka"]
        bootstrap = env["kafka"]["bootstrap"]
        self._record_component(
            "kafka",
            {
                "pid": pid,
                "started": procs._start_time(pid),
                "log": env["logs"]["kafka"],
                "bootstrap": bootstrap,
                "url": None,
                "detail": f"Kafka {env['kafka']['version']} (KRaft), data in {self.state_dir / 'kafka' / 'data'}",
            },
        )
        self._mark("kafka")
        return bootstrap

    def start_prometheus(self, ports: plan.Ports) -> None:
        from fp_devtools import prometheus

        home = self.state_dir / "prometheus"
        for sub in ("targets", "rules"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        for name, targets in plan.scrape_targets(self.p, ports).items():
            if name == "model" and self.p.spec.suspend:
                continue
            (home / "targets" / f"{name}.json").write_text(json.dumps(targets, indent=2) + "\n")
        rules = home / "rules" / "fraudpipeline.yaml"
        import yaml

        rules.write_text(
            "# The operator's alert rules (fp_operator.builders.monitoring), written by `fraudpipe up`.\n"
            + yaml.safe_dump(plan.alert_rules(self.p), sort_keys=False)
        )
        with self.console.status("starting Prometheus ..."):
            env = prometheus.start(self.state_dir)
        check = procs.run_quiet([env["tools"]["promtool"], "check", "rules", str(rules)])
        if check.returncode != 0:
            self.say(
                f"[yellow]note:[/] promtool refuses the operator's rules, not loaded: {check.stdout}{check.stderr}"
            )
            rules.rename(rules.with_suffix(".refused"))
        pid = env["pids"]["prometheus"]
        url = env["prometheus"]["url"]
        self._record_component(
            "prometheus",
            {
                "pid": pid,
                "started": procs._start_time(pid),
                "log": env["logs"]["prometheus"],
                "url": url,
                "port": int(url.rsplit(":", 1)[1]),
                "health": f"{url}/-/ready",
                "detail": "scrapes the job, the model service and the ingest API; the operator's alert rules",
            },
        )
        self.record["prometheus_jobs"] = {
            name: t[0]["labels"]["job"] for name, t in plan.scrape_targets(self.p, ports).items()
        }
        self._mark("prometheus")

    def spawn(self, name: str, argv: list[str], env: dict | None = None, **extra: Any) -> dict:
        comp = procs.start(argv, self.logs / f"{name}.log", env=env, cwd=self.state_dir)
        comp.update(extra)
        self._record_component(name, comp)
        return comp

    def start_services(self, ports: plan.Ports, bootstrap: str, model: dict) -> None:
        p = self.p
        serving_url = f"http://127.0.0.1:{ports.serving}"
        ingest_url = f"http://127.0.0.1:{ports.ingest}"
        stream_dir = self.state_dir / "stream"
        if not p.spec.suspend:
            self.spawn(
                "serving",
                plan.serving_command(ports.serving),
                env=plan.serving_env(p, dict(os.environ), Path(model["bentoml_home"])),
                url=serving_url,
                health=f"{serving_url}/readyz",
                detail=f"bentoml serve, {model['tag']}, {p.spec.model.workers} worker(s)",
            )
        self.spawn(
            "ingest",
            plan.ingest_command(self.opts.pipeline_file.resolve(), bootstrap, ports.ingest),
            url=ingest_url,
            health=f"{ingest_url}/readyz",
            detail="Strimzi Kafka Bridge produce API + /v1/transactions, /v1/labels",
        )
        if not p.spec.suspend:
            self.spawn(
                "stream",
                plan.stream_command(
                    p,
                    bootstrap,
                    Path(model["export"]),
                    serving_url,
                    stream_dir,
                    ports.flink_metrics,
                    self.parallelism,
                ),
                url=None,
                metrics_port=ports.flink_metrics,
                state_dir=str(stream_dir),
                detail=f"PyFlink mini-cluster, {p.spec.stream.scoring.mode} scoring, checkpoints every "
                f"{p.spec.stream.checkpoint_interval} in {stream_dir}",
            )
        self.spawn(
            "ui",
            [plan.PYTHON, "-m", "fp_local.monitor", "--state-dir", str(self.state_dir), "--port", str(ports.ui)],
            url=f"http://127.0.0.1:{ports.ui}",
            health=f"http://127.0.0.1:{ports.ui}/healthz",
            detail="the live page",
        )

    def wait_ready(self) -> None:
        import httpx

        from fp_devtools.process import ServerFailed, wait_healthy

        comps = self.record["components"]

        def http_ok(url: str) -> Callable[[], bool]:
            return lambda: httpx.get(url, timeout=2).status_code == 200

        def job_running(stream_dir: Path) -> Callable[[], bool]:
            """Every task of the job runs (before that, checkpoints cannot even be triggered)."""
            from fp_local.monitor import flink_rest_url, running_job

            def check() -> bool:
                rest = flink_rest_url(stream_dir)
                if rest is None:
                    return False
                if running_job(httpx.get(f"{rest}/jobs/overview", timeout=2).json()["jobs"]) is None:
                    return False
                comps["stream"]["url"] = rest  # Flink's web UI
                return True

            return check

        order = [n for n in ("ingest", "serving", "stream", "ui") if n in comps]
        for name in order:
            comp = comps[name]
            check = job_running(Path(comp["state_dir"])) if name == "stream" else http_ok(comp["health"])
            started = time.monotonic()
            with self.console.status(f"waiting for {name} ..."):
                try:
                    wait_healthy(name, comp["_proc"], check, Path(comp["log"]), timeout=HEALTH_TIMEOUT_S[name])
                except ServerFailed as exc:
                    raise UpFailed(str(exc)) from None
            self._mark(name)
            _save(self.state_dir, self.record)
            self.say(f"[green]✓[/green] {name} ready ({time.monotonic() - started:.0f} s)")

    def start_replay(self, ports: plan.Ports) -> None:
        if self.record.get("replayed"):
            r = self.record["replayed"]
            self.say(
                f"[yellow]note:[/] not replaying: this state folder already had the replay of {r.get('from')} "
                f"(started {time.strftime('%Y-%m-%d %H:%M', time.localtime(r.get('at', 0)))}); its transactions "
                "again would only be refused as repeated ids. `fraudpipe down --purge` starts afresh."
            )
            return
        argv = plan.replay_command(
            self.opts.pipeline_file.resolve(),
            f"http://127.0.0.1:{ports.ingest}",
            self.opts.rate,
            self.opts.replay_limit,
        )
        self.spawn(
            "replay",
            argv,
            url=None,
            detail=f"the handbook's test week (2018-08-08, 7 days) at {self.opts.rate} tx/s through the ingest API",
        )
        self.record["replayed"] = {"from": "2018-08-08", "at": time.time(), "rate": self.opts.rate}
        _save(self.state_dir, self.record)
        self.say(f"replaying the handbook's test week at {self.opts.rate} transactions/s through the ingest API")

    # -- the whole
    def run(self) -> plan.Ports:
        p = self.p
        previous = state.read(self.state_dir)
        running = running_components(previous)
        if running:
            raise AlreadyRunning(self.state_dir, running)
        if previous.get("components"):
            down(self.state_dir, self.console)  # leftovers of a run that crashed
        ports = self.ports(previous.get("ports") or {})
        problems = self.check(ports)
        if problems:
            raise Prerequisites(problems)
        self.parallelism = self.opts.parallelism or 1
        notes = plan.notes(p, self.parallelism)
        if notes.ignored:
            self.say(f"[dim]ignored here (Kubernetes only): {', '.join(notes.ignored)}[/dim]")
        for note in notes.adapted:
            self.say(f"[dim]note: {note}[/dim]")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.record = {
            **{k: v for k, v in previous.items() if k in ("replayed",)},
            "pipeline": f"{p.namespace}/{p.name}",
            "file": str(self.opts.pipeline_file.resolve()),
            "state_dir": str(self.state_dir),
            "up_pid": os.getpid(),
            "started_at": time.time(),
            "ports": ports.as_dict(),
            "topics": {role: p.topic_name(role) for role in p.spec.kafka.topics.all()},
            "consumer_group": p.consumer_group,
            "scoring_mode": p.spec.stream.scoring.mode,
            "checkpoint_interval": p.spec.stream.checkpoint_interval,
            "parallelism": self.parallelism,
            "components": {},
        }
        _save(self.state_dir, self.record)
        self.prepare()
        self.record["model"] = self.model()
        _save(self.state_dir, self.record)
        bootstrap = self.start_kafka(ports)
        for line in topics.ensure(bootstrap, plan.topics(p)):
            self.say(f"[dim]topic {line}[/dim]")
        self._mark("topics")
        self.start_prometheus(ports)
        self.start_services(ports, bootstrap, self.record["model"])
        self.wait_ready()
        self.record["ready_at"] = time.time()
        self.record["timings_s"] = self.timings
        _save(self.state_dir, self.record)
        if self.opts.replay:
            self.start_replay(ports)
        return ports


class AlreadyRunning(RuntimeError):
    def __init__(self, state_dir: Path, running: dict):
        super().__init__(f"already running from {state_dir}: {', '.join(running)}")
        self.state_dir = state_dir
        self.running = running


class Prerequisites(RuntimeError):
    def __init__(self, problems: list[preflight.Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


class Interrupted(BaseException):
    """SIGTERM or SIGHUP while `up` runs in the foreground: stop as Ctrl-C does."""


TERMINAL_GONE = threading.Event()


def on_terminate() -> None:
    def raise_interrupt(signum, _frame):
        if signum == signal.SIGHUP:
            TERMINAL_GONE.set()
        raise Interrupted(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)
