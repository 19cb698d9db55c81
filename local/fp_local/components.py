"""Start one component of a local pipeline: the same function for its first start and every restart.

The supervisor (fp_local.supervisor) calls `start(ctx, name)` for each component in `START_ORDER`
and again for one that died; everything a start needs is in `Context`, read back from local.json,
so a supervisor started by a later `up` restarts a component exactly as the first one started it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fp_local import plan, procs, topics
from fraudpipeline.spec import FraudPipeline, load_pipeline

# Kafka first (everything reads or writes it), then Prometheus, then the services, the page last.
START_ORDER = ("kafka", "prometheus", "serving", "ingest", "stream", "ui")


@dataclass(frozen=True)
class Context:
    p: FraudPipeline
    state_dir: Path
    file: Path
    ports: plan.Ports
    model: dict[str, Any]
    parallelism: int

    @classmethod
    def from_record(cls, state_dir: Path, record: dict) -> Context:
        file = Path(record["file"])
        return cls(
            p=load_pipeline(file),
            state_dir=Path(state_dir),
            file=file,
            ports=plan.Ports(**record["ports"]),
            model=record["model"],
            parallelism=int(record.get("parallelism") or 1),
        )

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"


def wanted(ctx: Context) -> list[str]:
    """The components this pipeline runs (a suspended one has no job and no model service)."""
    skip = {"serving", "stream"} if ctx.p.spec.suspend else set()
    return [n for n in START_ORDER if n not in skip]


def start(ctx: Context, name: str) -> tuple[dict, subprocess.Popen]:
    """Start `name`; returns its record for local.json and its process (a child of the caller)."""
    return _STARTERS[name](ctx)


def _kafka(ctx: Context) -> tuple[dict, subprocess.Popen]:
    from fp_devtools import kafka

    started: list[subprocess.Popen] = []
    ports = ctx.ports
    env = kafka.start(ctx.state_dir, port=ports.kafka, controller_port=ports.kafka_controller, procs_out=started)
    proc = started[0]
    # What Strimzi's topic operator does on a cluster; idempotent, so again after every restart.
    changes = topics.ensure(env["kafka"]["bootstrap"], plan.topics(ctx.p))
    comp = {
        "pid": proc.pid,
        "started": procs.start_time(proc.pid),
        "log": env["logs"]["kafka"],
        "bootstrap": env["kafka"]["bootstrap"],
        "url": None,
        "topics": changes,
        "detail": f"Kafka {env['kafka']['version']} (KRaft), data in {ctx.state_dir / 'kafka' / 'data'}",
    }
    return comp, proc


def _prometheus(ctx: Context) -> tuple[dict, subprocess.Popen]:
    from fp_devtools import prometheus

    home = ctx.state_dir / "prometheus"
    for sub in ("targets", "rules"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for name, targets in plan.scrape_targets(ctx.p, ctx.ports).items():
        if name == "model" and ctx.p.spec.suspend:
            continue
        (home / "targets" / f"{name}.json").write_text(json.dumps(targets, indent=2) + "\n")
    rules = home / "rules" / "fraudpipeline.yaml"
    rules.write_text(
        "# The operator's alert rules (fp_operator.builders.monitoring), written by `fraudpipe up`.\n"
        + yaml.safe_dump(plan.alert_rules(ctx.p), sort_keys=False)
    )
    started: list[subprocess.Popen] = []
    env = prometheus.start(ctx.state_dir, port=ctx.ports.prometheus or None, procs_out=started)
    proc = started[0]
    check = procs.run_quiet([env["tools"]["promtool"], "check", "rules", str(rules)])
    refused = None
    if check.returncode != 0:
        refused = f"promtool refuses the operator's rules, not loaded: {check.stdout}{check.stderr}"
        rules.rename(rules.with_suffix(".refused"))
    url = env["prometheus"]["url"]
    comp = {
        "pid": proc.pid,
        "started": procs.start_time(proc.pid),
        "log": env["logs"]["prometheus"],
        "url": url,
        "port": int(url.rsplit(":", 1)[1]),
        "health": f"{url}/-/ready",
        "rules_refused": refused,
        "detail": "scrapes the job, the model service and the ingest API; the operator's alert rules",
    }
    return comp, proc


def _spawned(ctx: Context, name: str, argv: list[str], env: dict | None = None, **extra: Any):
    comp = procs.start(argv, ctx.logs / f"{name}.log", env=env, cwd=ctx.state_dir, owner=f"{ctx.state_dir}:{name}")
    proc = comp.pop("_proc")
    comp.update(extra)
    return comp, proc


def _serving(ctx: Context) -> tuple[dict, subprocess.Popen]:
    url = f"http://127.0.0.1:{ctx.ports.serving}"
    return _spawned(
        ctx,
        "serving",
        plan.serving_command(ctx.ports.serving),
        env=plan.serving_env(ctx.p, dict(os.environ), Path(ctx.model["bentoml_home"])),
        url=url,
        health=f"{url}/readyz",
        detail=f"bentoml serve, {ctx.model['tag']}, {ctx.p.spec.model.workers} worker(s)",
    )


def _ingest(ctx: Context) -> tuple[dict, subprocess.Popen]:
    url = f"http://127.0.0.1:{ctx.ports.ingest}"
    return _spawned(
        ctx,
        "ingest",
        plan.ingest_command(ctx.file, ctx.bootstrap, ctx.ports.ingest),
        url=url,
        health=f"{url}/readyz",
        detail="Strimzi Kafka Bridge produce API + /v1/transactions, /v1/labels",
    )


def _stream(ctx: Context) -> tuple[dict, subprocess.Popen]:
    stream_dir = ctx.state_dir / "stream"
    s = ctx.p.spec.stream
    return _spawned(
        ctx,
        "stream",
        plan.stream_command(
            ctx.p,
            ctx.bootstrap,
            Path(ctx.model["export"]),
            f"http://127.0.0.1:{ctx.ports.serving}",
            stream_dir,
            ctx.ports.flink_metrics,
            ctx.parallelism,
        ),
        url=None,
        metrics_port=ctx.ports.flink_metrics,
        state_dir=str(stream_dir),
        detail=f"PyFlink mini-cluster, {s.scoring.mode} scoring, checkpoints every {s.checkpoint_interval} in "
        f"{stream_dir}; a restart resumes from the newest checkpoint",
    )


def _ui(ctx: Context) -> tuple[dict, subprocess.Popen]:
    url = f"http://127.0.0.1:{ctx.ports.ui}"
    return _spawned(
        ctx,
        "ui",
        [plan.PYTHON, "-m", "fp_local.monitor", "--state-dir", str(ctx.state_dir), "--port", str(ctx.ports.ui)],
        url=url,
        health=f"{url}/healthz",
        detail="the live page",
    )


_STARTERS = {
    "kafka": _kafka,
    "prometheus": _prometheus,
    "serving": _serving,
    "ingest": _ingest,
    "stream": _stream,
    "ui": _ui,
}
