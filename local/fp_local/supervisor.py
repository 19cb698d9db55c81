"""The local mode's supervisor: starts a pipeline's components and starts again any that dies.

`fraudpipe up` starts it (recorded in local.json as the component "supervisor") and returns or shows
the page; it runs until `fraudpipe down`, which stops it first. It starts each component in order
(Kafka with the pipeline's topics, Prometheus, the model service, the ingest API, the streaming
job, the page), watches every one, and restarts a component that exits, after a back-off
(`RestartPolicy`): the job resumes from its newest checkpoint, Kafka with its data, each at the
ports of the first start. A component that keeps dying (`GIVE_UP_AFTER` starts in a row that each
lived under `STABLE_AFTER_S`) is not started again: local.json marks it failed with its last exit
and its log's last lines, which `fraudpipe status` shows; `fraudpipe up` starts it once more.

Components already running when it starts (a later `up` on a partly running pipeline) are adopted,
not restarted. Their exit status cannot be known (they are not its children); its own are.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fp_local import components, procs, state

log = logging.getLogger("fp_local.supervisor")

STABLE_AFTER_S = 60.0  # a component that ran this long before dying starts a fresh count
GIVE_UP_AFTER = 5  # failed starts in a row before the component is reported, not restarted
MAX_DELAY_S = 30.0
TAIL_LINES = 20
POLL_S = 0.5


@dataclass
class RestartPolicy:
    """When to start a component again after it died, and when to give up: no I/O, unit-tested."""

    in_a_row: int = 0  # deaths since the component last ran STABLE_AFTER_S
    restarts: int = 0

    def died(self, ran_s: float) -> float | None:
        """Seconds to wait before the next start, or None: give up (it keeps dying)."""
        self.in_a_row = 1 if ran_s >= STABLE_AFTER_S else self.in_a_row + 1
        if self.in_a_row >= GIVE_UP_AFTER:
            return None
        return min(MAX_DELAY_S, 2.0 ** (self.in_a_row - 1))

    def reset(self) -> None:
        self.in_a_row = 0


@dataclass
class Watched:
    name: str
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    proc: subprocess.Popen | None = None  # None: adopted (not our child) or not running
    record: dict = field(default_factory=dict)
    started_at: float = 0.0  # monotonic
    state: str = "running"  # running | waiting | failed
    next_start: float = 0.0


def describe_exit(code: int | None) -> dict:
    """The last exit as local.json keeps it: exit code, or the signal that ended the process."""
    if code is None:
        return {
            "code": None,
            "signal": None,
            "short": "died",
            "text": "died (exit status unknown: not started by this supervisor)",
        }
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return {"code": code, "signal": name, "short": name, "text": f"killed by {name}"}
    return {"code": code, "signal": None, "short": f"exit {code}", "text": f"exited with code {code}"}


class Supervisor:
    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir).resolve()
        record = state.read(self.state_dir)
        self.ctx = components.Context.from_record(self.state_dir, record)
        self.watched = {name: Watched(name) for name in components.wanted(self.ctx)}
        self.stopping = threading.Event()
        self._looked_at = 0.0

    # -- local.json
    def _publish(self, w: Watched, **extra) -> None:
        supervision = {
            "state": w.state,
            "restarts": w.policy.restarts,
            "failures_in_a_row": w.policy.in_a_row,
            **extra,
        }

        def change(record: dict) -> None:
            comps = record.setdefault("components", {})
            comp = {**comps.get(w.name, {}), **w.record} if w.record else dict(comps.get(w.name, {}))
            comp["supervision"] = {**(comp.get("supervision") or {}), **supervision}
            if w.state != "failed":
                comp["supervision"].pop("log_tail", None)
            comps[w.name] = comp

        state.update(self.state_dir, change)

    # -- starting
    def start(self, w: Watched) -> None:
        old = (state.read(self.state_dir).get("components") or {}).get(w.name)
        if old:
            procs.stop(old, timeout=10.0)  # what is left of the dead one's group (a JVM, workers)
        log.info("starting %s", w.name)
        w.started_at = time.monotonic()
        try:
            w.record, w.proc = components.start(self.ctx, w.name)
        except Exception as exc:  # noqa: BLE001 - a failed start is a death like any other
            log.warning("%s did not start: %s", w.name, exc)
            w.proc, w.record = None, {}
            why = f"did not start: {str(exc)[:2000]}"
            self._died(w, {"code": None, "signal": None, "short": "no start", "text": why})
            return
        w.state = "running"
        self._publish(w, last_started_at=time.time())

    def adopt_or_start(self) -> None:
        comps = state.read(self.state_dir).get("components") or {}
        for name, w in self.watched.items():
            if self.stopping.is_set():
                return
            comp = comps.get(name)
            if comp and procs.alive(comp):
                log.info("adopting %s (pid %s), already running", name, comp["pid"])
                w.record, w.started_at = dict(comp), time.monotonic()
                w.policy.restarts = int((comp.get("supervision") or {}).get("restarts") or 0)
                self._publish(w)
                continue
            self.start(w)

    # -- watching
    def _exit_of(self, w: Watched) -> tuple[bool, int | None]:
        """(dead, exit code); the code is None for an adopted process."""
        if w.proc is not None:
            code = w.proc.poll()
            return code is not None, code
        return not procs.alive(w.record), None

    def _died(self, w: Watched, last_exit: dict) -> None:
        ran = time.monotonic() - w.started_at
        delay = w.policy.died(ran)
        last_exit = {**last_exit, "at": time.time(), "ran_s": round(ran, 1)}
        if delay is None:
            w.state = "failed"
            tail = procs.tail((w.record or {}).get("log") or str(self.ctx.logs / f"{w.name}.log"), TAIL_LINES)
            log.error("%s keeps dying (%d starts in a row): not restarted; %s", w.name, w.policy.in_a_row, tail)
            self._publish(w, last_exit=last_exit, log_tail=tail, next_start_at=None)
            return
        w.state, w.next_start = "waiting", time.monotonic() + delay
        w.policy.restarts += 1
        log.warning("%s %s after %.0f s; starting it again in %.0f s", w.name, last_exit["text"], ran, delay)
        self._publish(w, last_exit=last_exit, next_start_at=time.time() + delay)

    def _find_flink_ui(self, w: Watched) -> None:
        """The job's web UI address once its new mini-cluster runs the job (its port changes per start)."""
        import httpx

        from fp_local.monitor import flink_rest_url, running_job

        rest = flink_rest_url(Path(w.record["state_dir"]))
        if rest is None:
            return
        try:
            job = running_job(httpx.get(f"{rest}/jobs/overview", timeout=2).json()["jobs"])
        except Exception:  # noqa: BLE001 - an old address from an earlier start, or not up yet
            return
        if job is not None and job.get("start-time", 0) / 1000 >= w.record.get("started", 0) - 1:
            w.record["url"] = rest
            self._publish(w)

    def step(self) -> None:
        now = time.monotonic()
        for w in self.watched.values():
            if self.stopping.is_set():
                return
            if w.state == "running":
                dead, code = self._exit_of(w)
                if dead:
                    self._died(w, describe_exit(code))
                elif w.name == "stream" and not w.record.get("url") and now - self._looked_at > 2.0:
                    self._looked_at = now
                    self._find_flink_ui(w)
            elif w.state == "waiting" and now >= w.next_start:
                self.start(w)

    def run(self) -> None:
        self.adopt_or_start()
        while not self.stopping.wait(POLL_S):
            self.step()
        log.info("stopping: the components keep running until `fraudpipe down` stops them")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fp_local.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True, type=Path)
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its probes of the job's web UI, every 2 s
    sup = Supervisor(ns.state_dir)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: sup.stopping.set())
    sup.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
