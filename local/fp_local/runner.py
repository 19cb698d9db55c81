"""`fraudpipe up` and `fraudpipe down`: start a FraudPipeline's processes on this machine, stop them.

Up: check every prerequisite first (nothing starts while one is missing), fetch what is not cached
(Kafka's jars, the Flink connector, Prometheus), find or train the model, then start the supervisor
(fp_local.supervisor), which starts Kafka with the topics, Prometheus, the model service, the
ingest API, the streaming job and the page, and starts again any of them that dies; `up` waits
until each is ready. Each process is written to `local.json` as soon as it is spawned, so a failure
half-way (or a Ctrl-C) stops exactly what had started. On a pipeline that runs in part (a component
given up on, or the supervisor gone), `up` starts what is missing and leaves the rest running.
Down stops them in order: the supervisor first, the input, the job (it takes a savepoint while
Kafka still runs), Kafka last, and checks that every port is free again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from fp_local import components, modelstore, plan, preflight, procs, state
from fraudpipeline.spec import FraudPipeline

DEFAULT_UI_PORT = 8090
DEFAULT_REPLAY_RATE = "500"
STOP_TIMEOUT_S = {"stream": 150.0, "kafka": 60.0, "supervisor": 100.0}
# Kafka and Prometheus are waited for by the supervisor's start; up waits for them in the record.
HEALTH_TIMEOUT_S = {
    "kafka": 180.0,
    "prometheus": 120.0,
    "ingest": 90.0,
    "serving": 240.0,
    "stream": 300.0,
    "ui": 60.0,
}


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
    """Up's part of local.json: everything but the components, which the supervisor writes."""
    mine = {k: v for k, v in _public(record).items() if k != "components"}
    state.update(state_dir, lambda current: current.update(mine))


def running_components(record: dict) -> dict[str, dict]:
    return {n: c for n, c in (record.get("components") or {}).items() if procs.alive(c)}


def missing_components(p: FraudPipeline, record: dict) -> list[str]:
    """What should run and does not: not running, or given up on by the supervisor."""
    wanted = ["supervisor", *(n for n in components.START_ORDER if n not in _skipped(p))]
    comps = record.get("components") or {}
    return [
        n
        for n in wanted
        if not (comps.get(n) and procs.alive(comps[n]))
        or ((comps[n].get("supervision") or {}).get("state") == "failed")
    ]


def _skipped(p: FraudPipeline) -> set[str]:
    return {"serving", "stream"} if p.spec.suspend else set()


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

    def stopped_now(current: dict) -> None:
        current["components"] = {}
        current["stopped_at"] = time.time()

    if record:
        state.update(state_dir, stopped_now)
    return {"stopped": stopped, "forced": forced, "ports_still_in_use": busy}


# The ports each component listens on (keys of local.json's "ports").
_PORTS_OF = {
    "kafka": ("kafka", "kafka_controller"),
    "ingest": ("ingest",),
    "serving": ("serving",),
    "stream": ("flink_metrics",),
    "ui": ("ui",),
    "prometheus": ("prometheus",),
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
        public = {k: v for k, v in comp.items() if not k.startswith("_")}
        state.update(self.state_dir, lambda current: current.setdefault("components", {}).__setitem__(name, public))

    # -- steps
    def ports(self, previous: dict) -> plan.Ports:
        """The spec's bridge port, the page's port, and the ports of the last run where still free.

        Fixed for the pipeline's life: a component the supervisor starts again listens where it did."""
        from fp_devtools.argv import free_ports

        spare = iter(free_ports(6))

        def reuse(key: str) -> int:
            port = previous.get(key)
            return port if port and procs.port_free(port) else next(spare)

        ui = self.opts.ui_port or previous.get("ui") or next(spare)
        return plan.Ports(
            kafka=reuse("kafka"),
            kafka_controller=reuse("kafka_controller"),
            ingest=self.opts.ingest_port or self.p.spec.kafka.bridge.port,
            serving=reuse("serving"),
            flink_metrics=reuse("flink_metrics"),
            ui=ui,
            prometheus=reuse("prometheus"),
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
                "the handbook data (regenerated on first use, about 10 s) with `fraudpipe train --quick`, "
                "usually under a minute"
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

    def spawn(self, name: str, argv: list[str], env: dict | None = None, **extra: Any) -> dict:
        comp = procs.start(argv, self.logs / f"{name}.log", env=env, cwd=self.state_dir)
        comp.update(extra)
        self._record_component(name, comp)
        return comp

    def start_supervisor(self) -> None:
        """The supervisor starts every component and keeps them running (fp_local.supervisor)."""
        self.spawn(
            "supervisor",
            [plan.PYTHON, "-m", "fp_local.supervisor", "--state-dir", str(self.state_dir)],
            url=None,
            detail="starts the components, and again any that dies (with back-off); log: logs/supervisor.log",
        )

    def wait_ready(self) -> None:
        """Until every component the supervisor starts is ready; fail with its log when one cannot start."""
        import httpx

        from fp_local.monitor import running_job

        def ready(comp: dict) -> bool:
            if comp.get("bootstrap"):  # Kafka: its start waited until it answered
                return procs.port_listening(int(comp["bootstrap"].rsplit(":", 1)[1]))
            if comp.get("metrics_port"):  # the job: every task runs (before that, no checkpoint is triggered)
                rest = comp.get("url")  # Flink's web UI, published by the supervisor once the job runs there
                jobs = httpx.get(f"{rest}/jobs/overview", timeout=2).json()["jobs"] if rest else []
                return running_job(jobs) is not None
            return httpx.get(comp["health"], timeout=2).status_code == 200

        supervisor = self.record["components"]["supervisor"]
        wanted = [n for n in ("kafka", "prometheus", "ingest", "serving", "stream", "ui") if n not in _skipped(self.p)]
        for name in wanted:
            started = time.monotonic()
            with self.console.status(f"waiting for {name} ..."):
                comp = self._wait_component(name, supervisor, ready, started + HEALTH_TIMEOUT_S[name])
            self._mark(name)
            self.say(f"[green]✓[/green] {name} ready ({time.monotonic() - started:.0f} s)")
            for line in comp.get("topics") or []:
                self.say(f"[dim]topic {line}[/dim]")
            if comp.get("rules_refused"):
                self.say(f"[yellow]note:[/] {comp['rules_refused']}")
        self.record["components"] = state.read(self.state_dir).get("components") or {}

    def _wait_component(self, name: str, supervisor: dict, ready: Callable[[dict], bool], deadline: float) -> dict:
        """Poll local.json and the component until it is ready; UpFailed when it cannot be."""
        while True:
            comp = (state.read(self.state_dir).get("components") or {}).get(name) or {}
            supervision = comp.get("supervision") or {}
            log = comp.get("log") or str(self.logs / f"{name}.log")
            if supervision.get("state") == "failed":
                last = (supervision.get("last_exit") or {}).get("text", "")
                raise UpFailed(
                    f"{name} could not be started ({last}); the last lines of {log}:\n{supervision.get('log_tail', '')}"
                )
            if not procs.alive(supervisor):
                sup_log = self.logs / "supervisor.log"
                raise UpFailed(f"the supervisor exited; the last lines of {sup_log}:\n{procs.tail(sup_log)}")
            if supervision.get("state") == "running" and procs.alive(comp):
                try:
                    if ready(comp):
                        return comp
                except Exception:  # noqa: BLE001 - not answering yet
                    pass
            if time.monotonic() > deadline:
                raise UpFailed(f"{name} not ready in time; the last lines of {log}:\n{procs.tail(log)}")
            time.sleep(0.3)

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
            missing = missing_components(p, previous)
            if not missing:
                raise AlreadyRunning(self.state_dir, running)
            return self.resume(previous, missing)
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
            # The job label of each scrape target, as the operator's rules select them on a cluster.
            "prometheus_jobs": {name: t[0]["labels"]["job"] for name, t in plan.scrape_targets(p, ports).items()},
            "components": {},
        }
        state.write(self.state_dir, _public(self.record))
        self.prepare()
        self.record["model"] = self.model()
        _save(self.state_dir, self.record)
        self.start_supervisor()
        self.wait_ready()
        self.record["ready_at"] = time.time()
        self.record["timings_s"] = self.timings
        _save(self.state_dir, self.record)
        if self.opts.replay:
            self.start_replay(ports)
        return ports

    def resume(self, previous: dict, missing: list[str]) -> plan.Ports:
        """A pipeline that runs in part: a new supervisor adopts what runs and starts what is missing."""
        self.say(
            f"[yellow]{', '.join(missing)} not running[/]: starting what is missing; the rest keeps running "
            f"(state {self.state_dir})"
        )
        comps = previous.get("components") or {}
        if comps.get("supervisor") and procs.alive(comps["supervisor"]):
            procs.stop(comps["supervisor"], STOP_TIMEOUT_S["supervisor"])
        self.record = dict(previous)
        self.parallelism = int(previous.get("parallelism") or 1)
        self.record["up_pid"] = os.getpid()
        _save(self.state_dir, self.record)
        self.start_supervisor()
        self.wait_ready()
        self.record["ready_at"] = time.time()
        _save(self.state_dir, self.record)
        return plan.Ports(**previous["ports"])


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
