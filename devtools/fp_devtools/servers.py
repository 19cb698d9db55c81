"""Start, describe and stop the dev servers; `env.json` in the state dir records what runs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from fp_devtools import builds, kafka, kube, prometheus
from fp_devtools.process import alive, log_tail, stop

SERVERS = ("kafka", "kube", "prometheus")
# Which processes belong to which server, in the order they must stop.
PROCESSES = {
    "kafka": ["kafka"],
    "kube": ["kube-controller-manager", "kube-apiserver", "etcd"],
    "prometheus": ["prometheus"],
}
DEFAULT_STATE_DIR = Path(".fraudpipe/dev")


def env_path(state_dir: Path) -> Path:
    return Path(state_dir) / "env.json"


def read_env(state_dir: Path) -> dict:
    p = env_path(state_dir)
    return json.loads(p.read_text()) if p.exists() else {}


def _write_env(state_dir: Path, env: dict) -> None:
    p = env_path(state_dir)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(env, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)


def running(env: dict, server: str) -> bool:
    pids = env.get("pids", {})
    names = [n for n in PROCESSES[server] if n in pids]
    return bool(names) and server in env and all(alive(pids[n]) for n in names)


def _merge(env: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(env.get(key), dict):
            env[key].update(value)
        else:
            env[key] = value


def up(servers: list[str], state_dir: Path = DEFAULT_STATE_DIR) -> dict:
    """Start each requested server that is not already running; returns the whole env.json."""
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        raise ValueError(f"unknown server(s) {unknown}: choose from {', '.join(SERVERS)}")
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    env = read_env(state_dir)
    env.setdefault("pids", {})
    env.setdefault("logs", {})
    env.setdefault("tools", {})
    env["state_dir"] = str(state_dir)
    timings = env.setdefault("timings_s", {})
    starters = {"kafka": kafka.start, "kube": kube.start, "prometheus": prometheus.start}
    try:
        for server in servers:
            if running(env, server):
                continue
            _stop_server(env, server)  # leftovers of a crashed run
            t0 = time.monotonic()
            _merge(env, starters[server](state_dir))
            if server == "kube":
                env["tools"]["helm"] = str(builds.helm_binary())
            timings[server] = round(time.monotonic() - t0, 2)
            _write_env(state_dir, env)
    finally:
        _write_env(state_dir, env)
    return env


def prepare(servers: list[str]) -> dict[str, str]:
    """Download or build everything the servers need, without starting them (warms the cache)."""
    from fp_devtools import cache

    done: dict[str, str] = {}
    for server in servers:
        if server == "kafka":
            cache.require("java")
            done["kafka"] = f"{len(kafka.classpath().split(':'))} jars"
            # The streaming job's Kafka connector for local runs (fraudpipe stream run), by Maven too.
            from fp_flink.connector import kafka_connector_jar

            done["flink-kafka-connector"] = str(kafka_connector_jar())
        elif server == "kube":
            done.update({k: v or "missing" for k, v in kube.binaries().items()})
            done["helm"] = str(builds.helm_binary())
            from fp_devtools import gotools  # the deployment tooling's tests: skaffold render/diagnose

            done["skaffold"] = str(gotools.skaffold_binary())
        elif server == "prometheus":
            done["prometheus"] = str(prometheus.binaries())
            from fp_devtools import gotools  # the dashboard's lint test

            done["dashboard-linter"] = str(gotools.dashboard_linter_binary())
        else:
            raise ValueError(f"unknown server {server!r}: choose from {', '.join(SERVERS)}")
    return done


def _stop_server(env: dict, server: str) -> list[str]:
    stopped = []
    for name in PROCESSES[server]:
        pid = env.get("pids", {}).pop(name, None)
        if pid and alive(pid):
            stop(pid)
            stopped.append(name)
    env.pop(server, None)
    return stopped


def down(state_dir: Path = DEFAULT_STATE_DIR, servers: list[str] | None = None) -> list[str]:
    """Stop exactly the processes recorded in env.json (all, or those of `servers`)."""
    state_dir = Path(state_dir).resolve()
    env = read_env(state_dir)
    if not env:
        return []
    stopped: list[str] = []
    for server in servers or list(SERVERS):
        stopped += _stop_server(env, server)
    _write_env(state_dir, env)
    return stopped


def status(state_dir: Path = DEFAULT_STATE_DIR) -> dict[str, dict]:
    """Per recorded process: pid, alive, and its log file."""
    env = read_env(Path(state_dir).resolve())
    out = {}
    for server in SERVERS:
        for name in PROCESSES[server]:
            pid = env.get("pids", {}).get(name)
            if pid:
                out[name] = {"server": server, "pid": pid, "alive": alive(pid), "log": env["logs"].get(name)}
    return out


def failure_report(env: dict, lines: int = 30) -> str:
    """The tail of every server log, for a failing test's output."""
    parts = []
    for name, path in sorted(env.get("logs", {}).items()):
        parts.append(f"----- {name}: {path}\n{log_tail(Path(path), lines)}")
    return "\n".join(parts)
