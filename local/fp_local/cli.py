"""`fraudpipe up`, `down`, `status`, `alerts`: a FraudPipeline on this machine (docs/local.md)."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="The pipeline's state folder. Default: .fraudpipe/local/<metadata.name> of -f FILE, or the only one "
        "under .fraudpipe/local/.",
    ),
]
PipelineFile = Annotated[
    Path | None,
    typer.Option("-f", "--file", help="The FraudPipeline YAML (names its state folder).", exists=True, dir_okay=False),
]


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def up(
    pipeline_file: Annotated[
        Path, typer.Option("-f", "--file", help="The FraudPipeline YAML, as for kubectl apply.", dir_okay=False)
    ],
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Kafka's data, checkpoints, logs and local.json. Default: .fraudpipe/local/<name>."
        ),
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Return once everything is ready.")] = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Stream the handbook's test week (the regenerated handbook data set, or $FRAUDPIPE_DATA) "
            "through the ingest API once ready, so the page fills at once.",
        ),
    ] = False,
    rate: Annotated[str, typer.Option(help="--replay's pace: transactions per second, or 'max'.")] = "500",
    replay_limit: Annotated[
        int | None, typer.Option(help="--replay: stop after this many transactions.", min=1)
    ] = None,
    ingest_port: Annotated[
        int | None,
        typer.Option(help="The ingest API's port. Default: spec.kafka.bridge.port (8080).", min=1, max=65535),
    ] = None,
    ui_port: Annotated[int, typer.Option(help="The live page's port (0: any free port).", min=0, max=65535)] = 8090,
    parallelism: Annotated[
        int | None,
        typer.Option(
            help="The streaming job's parallelism here. Default 1: the local mini-cluster is one TaskManager "
            "(spec.stream.parallelism is for a cluster).",
            min=1,
        ),
    ] = None,
) -> None:
    """Run a FraudPipeline on this machine: Kafka, the ingest API, the model service, the streaming job,
    Prometheus and a live page. Ctrl-C (or `fraudpipe down`) stops what it started; a second `up` resumes."""
    from fp_local import runner
    from fp_local.modelstore import ModelUnavailable
    from fraudpipeline.spec import SpecError, load_pipeline

    console = _console()
    if not pipeline_file.is_file():
        console.print(f"[red]error:[/] {pipeline_file}: no such file (-f names a FraudPipeline YAML)")
        raise typer.Exit(2)
    try:
        p = load_pipeline(pipeline_file)
    except SpecError as exc:
        console.print(f"[red]error:[/] {exc}")
        console.print("(the API server refuses this FraudPipeline with the same message; nothing was started)")
        raise typer.Exit(2) from None
    if rate != "max":
        try:
            if float(rate) <= 0:
                raise ValueError
        except ValueError:
            raise typer.BadParameter(
                f"{rate!r}: give transactions per second (e.g. 500) or 'max'", param_hint="--rate"
            ) from None
    opts = runner.UpOptions(
        pipeline_file=pipeline_file,
        state_dir=state_dir,
        detach=detach,
        replay=replay,
        rate=rate,
        replay_limit=replay_limit,
        ingest_port=ingest_port,
        ui_port=ui_port,
        parallelism=parallelism,
    )
    job = runner.Up(p, opts, console)
    started = time.monotonic()
    if not detach:
        runner.on_terminate()
    try:
        ports = job.run()
    except runner.AlreadyRunning as exc:
        console.print(f"{p.namespace}/{p.name} is already running from {exc.state_dir}:")
        _print_status(exc.state_dir)
        console.print("(`fraudpipe down` stops it)")
        return
    except runner.Prerequisites as exc:
        console.print("[red]fraudpipe up cannot start:[/] nothing was started")
        for problem in exc.problems:
            console.print(f"  [red]✗[/] {problem.what}\n      fix: {problem.fix}")
        raise typer.Exit(2) from None
    except (runner.UpFailed, ModelUnavailable) as exc:
        console.print(f"[red]fraudpipe up failed:[/] {exc}")
        _stop(job.state_dir, console, "stopping what had started")
        raise typer.Exit(1) from None
    except Exception:  # noqa: BLE001 - whatever failed, stop what had started
        console.print_exception()
        console.print("[red]fraudpipe up failed[/] (above)")
        _stop(job.state_dir, console, "stopping what had started")
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, runner.Interrupted):
        console.print("\ninterrupted")
        _stop(job.state_dir, console, "stopping what had started")
        raise typer.Exit(130) from None
    comps = job.record["components"]
    console.print(
        f"\n[bold green]{p.namespace}/{p.name} is up[/] in {time.monotonic() - started:.0f} s (state: {job.state_dir})"
    )
    console.print(f"  live page      {comps['ui']['url']}")
    console.print(
        f"  ingest API     {comps['ingest']['url']}  (fraudpipe send -f {pipeline_file} ..., the Strimzi bridge's curl)"
    )
    if "serving" in comps:
        console.print(f"  model service  {comps['serving']['url']}  ({job.record['model']['tag']})")
    console.print(f"  Prometheus     {comps['prometheus']['url']}")
    console.print(f"  Kafka          {comps['kafka']['bootstrap']}")
    console.print("  alerts         fraudpipe alerts --follow" + _state_flag(job, p))
    if detach:
        console.print(f"  stop           fraudpipe down{_state_flag(job, p)}")
        return
    from fp_local import live

    try:
        live.run(comps["ui"]["url"], console, lambda: True)
    except (KeyboardInterrupt, runner.Interrupted, OSError):  # Ctrl-C, SIGTERM, or the terminal went away
        pass
    finally:
        _stop(job.state_dir, console, "stopping")
    del ports


def _state_flag(job, p) -> str:
    from fp_local import state

    default = state.default_state_dir(p.name).resolve()
    return "" if job.state_dir == default else f" --state-dir {job.state_dir}"


def _stop(state_dir: Path, console, what: str) -> dict:
    """Stop what `up` started. A second Ctrl-C, SIGTERM or a closed terminal must not cut it short:
    the job would lose its savepoint and Kafka might be left running."""
    import signal

    from fp_local import runner

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    console = _usable(console, state_dir)
    console.print(f"{what} (signals are ignored until everything has stopped) ...")
    result = runner.down(state_dir, console)
    _report_down(result, console)
    return result


class _SafeStream(io.TextIOBase):
    """The terminal while it is there, then (a closed terminal raises EIO) the state folder's up.log:
    the stop must go on whatever happens to the terminal."""

    def __init__(self, primary, fallback: Path):
        self.primary = primary
        self.fallback_path = fallback
        self.fallback = None

    def _spare(self):
        if self.fallback is None:
            self.fallback_path.parent.mkdir(parents=True, exist_ok=True)
            self.fallback = open(self.fallback_path, "a")
        return self.fallback

    def write(self, text: str) -> int:
        if self.primary is not None:
            try:
                self.primary.write(text)
                self.primary.flush()
                return len(text)
            except (OSError, ValueError):
                self.primary = None
        self._spare().write(text)
        self._spare().flush()
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        try:
            return self.primary is not None and self.primary.isatty()
        except (OSError, ValueError):
            return False


def _usable(console, state_dir: Path):
    """A console that never fails: the terminal, or logs/up.log once the terminal is gone."""
    from rich.console import Console

    from fp_local import runner

    log = Path(state_dir) / "logs" / "up.log"
    primary = None if runner.TERMINAL_GONE.is_set() else console.file
    return Console(
        file=_SafeStream(primary, log),
        highlight=False,
        soft_wrap=True,
        force_terminal=console.is_terminal and primary is not None,
    )


def _report_down(result: dict, console) -> None:
    console.print(f"stopped: {', '.join(result['stopped']) or 'nothing was running'}")
    for f in result["forced"]:
        console.print(f"[yellow]forced:[/] {f}")
    if result["ports_still_in_use"]:
        console.print(f"[red]ports still in use:[/] {result['ports_still_in_use']}")


def down(
    pipeline_file: PipelineFile = None,
    state_dir: StateDir = None,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the state folder: Kafka's data, checkpoints, logs.")
    ] = False,
) -> None:
    """Stop exactly the processes `fraudpipe up` started (the job takes a savepoint first); data stays."""
    import shutil

    from fp_local import state

    console = _console()
    try:
        folder = state.resolve(state_dir, pipeline_file)
    except state.NoPipeline:
        console.print("no local pipeline under .fraudpipe/local/: nothing to stop")
        return
    except state.StateError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not state.record_path(folder).is_file():
        console.print(f"nothing recorded in {folder}: nothing to stop")
        return
    result = _stop(folder, console, f"stopping the local pipeline in {folder}")
    if purge:
        shutil.rmtree(folder)
        console.print(f"deleted {folder}")
    if result["ports_still_in_use"]:
        raise typer.Exit(1)


def _health(comp: dict, client) -> str:
    from fp_local import procs

    supervision = comp.get("supervision") or {}
    if supervision.get("state") == "failed":
        return "failed"
    if supervision.get("state") == "waiting":
        return "restarting"
    if not procs.alive(comp):
        return "down"
    url = comp.get("health")
    if url:
        try:
            return "ok" if client.get(url).status_code == 200 else "starting"
        except Exception:  # noqa: BLE001 - not answering
            return "starting"
    if comp.get("bootstrap"):
        return "ok" if procs.port_listening(int(comp["bootstrap"].rsplit(":", 1)[1])) else "starting"
    if comp.get("metrics_port"):
        from fp_local.figures import parse_job

        try:
            text = client.get(f"http://127.0.0.1:{comp['metrics_port']}/metrics").text
        except Exception:  # noqa: BLE001
            return "starting"
        return "ok" if (parse_job(text).get("running_jobs") or 0) >= 1 else "starting"
    return "ok"


def status_rows(folder: Path) -> tuple[dict, list[dict]]:
    import httpx

    from fp_local import state

    record = state.read(folder)
    rows = []
    with httpx.Client(timeout=2) as client:
        for name, comp in (record.get("components") or {}).items():
            health = _health(comp, client)
            if name == "replay" and health == "down":
                health = "done"
            supervision = comp.get("supervision") or {}
            rows.append(
                {
                    "component": name,
                    "health": health,
                    "pid": comp.get("pid"),
                    "url": comp.get("url") or comp.get("bootstrap"),
                    "log": comp.get("log"),
                    "detail": comp.get("detail"),
                    "restarts": supervision.get("restarts", 0),
                    "last_exit": supervision.get("last_exit"),
                    "log_tail": supervision.get("log_tail"),
                }
            )
    return record, rows


def _print_status(folder: Path) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

    record, rows = status_rows(folder)
    out = Console()
    model = record.get("model") or {}
    out.print(
        f"[bold]{record.get('pipeline')}[/bold]  model {model.get('tag')} (threshold {model.get('threshold')})  "
        f"state {folder}",
        highlight=False,
    )
    table = Table("component", "health", "pid", "restarts", "last exit", "url")
    colors = {"ok": "green", "done": "green", "starting": "yellow", "restarting": "yellow"}
    colors.update(down="red", failed="red")
    for r in rows:
        last = r["last_exit"] or {}
        when = time.strftime("%H:%M:%S", time.localtime(last["at"])) if last.get("at") else ""
        table.add_row(
            r["component"],
            f"[{colors[r['health']]}]{r['health']}[/]",
            str(r["pid"]),
            str(r["restarts"] or 0),
            f"{last.get('short', '')} {when}".strip(),
            r["url"] or "",
        )
    out.print(table)
    for r in rows:
        if r["health"] == "failed":
            out.print(
                f"[red]{r['component']} keeps dying and is not restarted[/] (`fraudpipe up` starts it again); "
                f"the last lines of {r['log']}:",
                highlight=False,
            )
            out.print(r["log_tail"] or "", highlight=False, markup=False)
    out.print(f"logs: {folder / 'logs'}/<component>.log", highlight=False)
    return rows


def _state_of(console, state_dir, pipeline_file) -> tuple[Path, dict]:
    """The state folder these options name and its record; exit 2 with the reason when there is none."""
    from fp_local import state

    try:
        folder = state.resolve(state_dir, pipeline_file)
    except state.StateError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    return folder, state.read(folder)


def status(
    pipeline_file: PipelineFile = None,
    state_dir: StateDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the components as JSON.")] = False,
) -> None:
    """Each component of the local pipeline: its health, pid, restarts, last exit, URL and log. Exit 3 if one
    is down or given up on."""

    console = _console()
    folder, record = _state_of(console, state_dir, pipeline_file)
    if not record.get("components"):
        if as_json:
            print(json.dumps({"state_dir": str(folder), "running": False, "components": []}))
        else:
            console.print(f"not running (state folder {folder}); start it with `fraudpipe up -f FILE`")
        raise typer.Exit(3)
    if as_json:
        record, rows = status_rows(folder)
        print(
            json.dumps(
                {
                    "state_dir": str(folder),
                    "pipeline": record.get("pipeline"),
                    "running": True,
                    "model": record.get("model"),
                    "components": rows,
                },
                indent=2,
            )
        )
    else:
        rows = _print_status(folder)
    if any(r["health"] in ("down", "failed") for r in rows):
        raise typer.Exit(3)


def alerts(
    pipeline_file: PipelineFile = None,
    state_dir: StateDir = None,
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep printing new alerts as they are committed.")] = (
        False
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Each alert as the JSON record on the topic.")] = False,
    last: Annotated[int | None, typer.Option(help="Only the newest N alerts already committed.", min=1)] = None,
) -> None:
    """Print the committed alerts (read_committed: each once, after the checkpoint that covers it)."""
    from collections import deque

    from fp_local import explain
    from fp_local.alerts import emit, read

    console = _console()
    folder, record = _state_of(console, state_dir, pipeline_file)
    kafka = (record.get("components") or {}).get("kafka")
    if not kafka:
        console.print(
            f"[red]error:[/] the local pipeline in {folder} is not running: start it with `fraudpipe up -f FILE`"
        )
        raise typer.Exit(2)
    explainer = None if as_json else explain.load((record.get("model") or {}).get("export"))
    topic = record["topics"]["alerts"]
    try:
        if last is not None:
            newest: deque = deque(read(kafka["bootstrap"], topic), maxlen=last)
            for alert in sorted(newest, key=lambda a: a.get("decided_at", "")):
                emit(alert, as_json, explainer)
            if not follow:
                return
            console.print("[dim](following new alerts)[/dim]")
            seen = {(a["source"]["partition"], a["source"]["offset"]) for a in newest}
            for alert in read(kafka["bootstrap"], topic, follow=True):
                src = alert.get("source") or {}
                if (src.get("partition"), src.get("offset")) not in seen:
                    emit(alert, as_json, explainer)
            return
        for alert in read(kafka["bootstrap"], topic, follow=follow):
            emit(alert, as_json, explainer)
    except LookupError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        sys.stdout.flush()
