"""The live page's server: one process that watches the local pipeline and pushes what it sees.

Every second it reads the job's Prometheus endpoint (transactions scored, alerts, dead letters,
decision latency, running jobs, checkpoints) and the ingest API's, turns counters into rates,
checks each component's health, and pushes it all to every open page over server-sent events;
a Kafka consumer (read_committed) follows the alerts topic and pushes each alert as it is
committed, with the features that drove it. `fraudpipe up`'s terminal view reads the same
figures from /api/state. Run by `fraudpipe up` as `python -m fp_local.monitor --state-dir DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from fp_local import explain, figures, procs, state

log = logging.getLogger("fp_local.monitor")
BACKLOG = 50  # alerts kept and shown
LINKS = {"ingest": "ingest API", "serving": "model service", "stream": "Flink web UI", "prometheus": "Prometheus"}
_REST = re.compile(r"Web frontend listening at (http://\S+?)\.?$")


def flink_rest_url(stream_state_dir: Path) -> str | None:
    """The mini-cluster's REST/web UI address, from Flink's log (its port is chosen at start)."""
    found = None
    for path in sorted((stream_state_dir / "log").glob("*.log")):
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    m = _REST.search(line.rstrip())
                    if m:
                        found = m.group(1)
        except OSError:
            continue
    return found


def running_job(jobs: list[dict]) -> dict | None:
    """The newest job whose tasks all run (from the REST API's /jobs/overview), or None."""
    ready = [
        j
        for j in jobs
        if j.get("state") == "RUNNING" and (j.get("tasks") or {}).get("running") == (j.get("tasks") or {}).get("total")
    ]
    return max(ready, key=lambda j: j.get("start-time", 0)) if ready else None


class Hub:
    """Fan-out of events to every connected page (one queue each)."""

    def __init__(self) -> None:
        self.clients: set[asyncio.Queue] = set()

    def publish(self, event: str, data: Any) -> None:
        message = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"
        for q in list(self.clients):
            if q.qsize() < 1000:  # a page that stopped reading does not hold memory for ever
                q.put_nowait(message)


class AlertFeed(threading.Thread):
    """Follows the alerts topic (read_committed) from its newest BACKLOG records on."""

    def __init__(self, bootstrap: str, topic: str, on_alert, stop: threading.Event):
        super().__init__(name="alert-feed", daemon=True)
        self.bootstrap, self.topic, self.on_alert, self.stop_event = bootstrap, topic, on_alert, stop
        self.error: str | None = None

    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        while not self.stop_event.is_set():
            consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": f"fraudpipe-local-page-{uuid.uuid4().hex[:8]}",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
            try:
                meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    self.error = f"alerts topic {self.topic} not found"
                    self.stop_event.wait(2)
                    continue
                start = []
                for p in meta.partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                    start.append(TopicPartition(self.topic, p, max(low, high - BACKLOG)))
                consumer.assign(start)
                self.error = None
                while not self.stop_event.is_set():
                    for msg in consumer.consume(200, timeout=0.2):
                        if msg.error() is None and msg.value():
                            try:
                                self.on_alert(json.loads(msg.value()))
                            except ValueError:
                                continue
            except Exception as exc:  # noqa: BLE001 - Kafka away for a while: say so, try again
                self.error = f"reading {self.topic}: {exc}"
                self.stop_event.wait(2)
            finally:
                consumer.close()


class Monitor:
    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.record = state.read(state_dir)
        self.hub = Hub()
        self.rates = figures.Rates()
        self.alerts: deque = deque(maxlen=BACKLOG)
        self.alerts_seen = 0
        self.figures: dict[str, Any] = {}
        self.components: list[dict] = []
        self.prometheus_alerts: list[dict] = []
        self.checkpoint: dict[str, Any] = {}
        self.explainer = explain.load((self.record.get("model") or {}).get("export"))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event = threading.Event()
        self.flink_rest: str | None = None

    # -- alerts (called on the feed's thread)
    def _on_alert(self, alert: dict) -> None:
        if self.explainer is not None:
            alert["drivers"] = self.explainer.drivers(alert.get("features") or {})
        alert["seen_at"] = time.time()
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._publish_alert, alert)

    def _publish_alert(self, alert: dict) -> None:
        self.alerts.appendleft(alert)
        self.alerts_seen += 1
        self.hub.publish("alert", alert)

    # -- the snapshot
    def header(self) -> dict:
        r = self.record
        model = r.get("model") or {}
        return {
            "pipeline": r.get("pipeline"),
            "model_tag": model.get("tag"),
            "threshold": model.get("threshold"),
            "threshold_source": model.get("threshold_source"),
            "scoring_mode": r.get("scoring_mode"),
            "checkpoint_interval": r.get("checkpoint_interval"),
            "topics": r.get("topics"),
            "links": {
                label: comps[name]["url"]
                for name, label in LINKS.items()
                if (comps := r.get("components") or {}).get(name, {}).get("url")
            },
        }

    def snapshot(self) -> dict:
        return {
            **self.header(),
            "now": time.time(),
            "series": list(self.rates.series),
            "series_names": list(figures.SERIES),
            "figures": self.figures,
            "checkpoint": self.checkpoint,
            "components": self.components,
            "prometheus_alerts": self.prometheus_alerts,
            "alerts": list(self.alerts),
        }

    # -- the loops
    async def run_ticks(self) -> None:
        import httpx

        comps = self.record.get("components") or {}
        stream = comps.get("stream") or {}
        ingest = comps.get("ingest") or {}
        tx_topic = (self.record.get("topics") or {}).get("transactions", "")
        async with httpx.AsyncClient(timeout=1.5) as client:
            await self._backfill(client)
            n = 0
            while True:
                started = time.monotonic()
                now = time.time()
                job: dict[str, float] = {}
                if stream.get("metrics_port"):
                    job = figures.parse_job(await _get(client, f"http://127.0.0.1:{stream['metrics_port']}/metrics"))
                ing: dict[str, float] = {}
                if ingest.get("url"):
                    ing = figures.parse_ingest(await _get(client, f"{ingest['url']}/metrics"), tx_topic)
                point = {
                    "tx_per_s": self.rates.rate("scored", now, job.get("scored")),
                    "alerts_per_s": self.rates.rate("alerts", now, job.get("alerts")),
                }
                received = self.rates.rate("received", now, ing.get("received") if ing else None)
                row = self.rates.add(now, point)
                if n % 2 == 0:
                    self.components = await self._health(client, job)
                if n % 5 == 0:
                    self.prometheus_alerts = await self._prometheus_alerts(client)
                    # `up` adds what it learns later (Flink's web UI, the replay): read it again.
                    self.record = state.read(self.state_dir) or self.record
                    stream = (self.record.get("components") or {}).get("stream") or {}
                    self.flink_rest = stream.get("url")
                if self.flink_rest:
                    self.checkpoint = await self._checkpoint(client) or self.checkpoint
                self.figures = {
                    **{k: job.get(k) for k in ("scored", "alerts", "dead_letters", "refused", "labels")},
                    "latency_p50_ms": job.get("latency_p50"),
                    "latency_p99_ms": job.get("latency_p99"),
                    "running_jobs": job.get("running_jobs"),
                    "tx_per_s": point["tx_per_s"],
                    "alerts_per_s": point["alerts_per_s"],
                    "received_per_s": received,
                    "received": ing.get("received") if ing else None,
                    "alerts_shown": self.alerts_seen,
                }
                self.hub.publish(
                    "tick",
                    {
                        "now": now,
                        "point": row,
                        "figures": self.figures,
                        "checkpoint": self.checkpoint,
                        "components": self.components,
                        "prometheus_alerts": self.prometheus_alerts,
                        "feed_error": None,
                    },
                )
                n += 1
                await asyncio.sleep(max(0.05, 1.0 - (time.monotonic() - started)))

    async def _backfill(self, client) -> None:
        """The last minutes from Prometheus, so a restarted `up` shows the chart it had."""
        prom = ((self.record.get("components") or {}).get("prometheus") or {}).get("url")
        job = (self.record.get("prometheus_jobs") or {}).get("stream")
        if not prom or not job:
            return
        end = time.time()
        rows: dict[float, dict[str, float]] = {}
        for key, counter in (("tx_per_s", "scored"), ("alerts_per_s", "alerts")):
            query = f'sum(rate({figures.JOB_PREFIX}{counter}{{job="{job}"}}[20s]))'
            try:
                resp = await client.get(
                    f"{prom}/api/v1/query_range",
                    params={"query": query, "start": end - self.rates.window_s, "end": end, "step": 5},
                )
                result = resp.json()["data"]["result"]
            except Exception:  # noqa: BLE001 - no history is fine
                return
            for series in result:
                for t, v in series["values"]:
                    rows.setdefault(float(t), {})[key] = float(v)
        for t in sorted(rows):
            self.rates.add(t, rows[t])

    async def _checkpoint(self, client) -> dict | None:
        try:
            jobs = (await client.get(f"{self.flink_rest}/jobs/overview")).json()["jobs"]
            job = running_job(jobs)
            if job is None:  # asking a job that is still being deployed for its checkpoints logs an error
                return None
            cp = (await client.get(f"{self.flink_rest}/jobs/{job['jid']}/checkpoints")).json()
            latest = (cp.get("latest") or {}).get("completed") or {}
            return {
                "job_state": job.get("state"),
                "completed": (cp.get("counts") or {}).get("completed"),
                "failed": (cp.get("counts") or {}).get("failed"),
                "last_completed_at": latest.get("latest_ack_timestamp", 0) / 1000 or None,
                "last_duration_ms": latest.get("end_to_end_duration"),
            }
        except Exception:  # noqa: BLE001 - the job restarting: keep the last known
            return None

    async def _health(self, client, job: dict[str, float]) -> list[dict]:
        out = []
        for name, comp in (self.record.get("components") or {}).items():
            if name == "replay":
                out.append(
                    {
                        "name": name,
                        "state": "running" if procs.alive(comp) else "done",
                        "url": None,
                        "detail": comp.get("detail", ""),
                    }
                )
                continue
            running = procs.alive(comp)
            ok = False
            if running:
                if name == "kafka":
                    ok = procs.port_listening(int(comp["bootstrap"].rsplit(":", 1)[1]))
                elif name == "stream":
                    ok = (job.get("running_jobs") or 0) >= 1
                elif name == "ui":
                    ok = True
                elif comp.get("health"):
                    try:
                        ok = (await client.get(comp["health"])).status_code == 200
                    except Exception:  # noqa: BLE001 - not answering is the answer
                        ok = False
            out.append(
                {
                    "name": name,
                    "state": "ok" if ok else ("starting" if running else "down"),
                    "url": comp.get("url"),
                    "pid": comp.get("pid"),
                }
            )
        return out

    async def _prometheus_alerts(self, client) -> list[dict]:
        prom = ((self.record.get("components") or {}).get("prometheus") or {}).get("url")
        if not prom:
            return []
        try:
            data = (await client.get(f"{prom}/api/v1/alerts")).json()["data"]["alerts"]
        except Exception:  # noqa: BLE001
            return self.prometheus_alerts
        return [
            {"name": a["labels"].get("alertname"), "state": a.get("state"), "severity": a["labels"].get("severity")}
            for a in data
        ]


async def _get(client, url: str) -> str:
    try:
        resp = await client.get(url)
        return resp.text if resp.status_code == 200 else ""
    except Exception:  # noqa: BLE001 - a component restarting: no figures this second
        return ""


def create_app(monitor: Monitor):
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, StreamingResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    static = Path(__file__).parent / "static"

    async def index(_request):
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    async def api_state(_request):
        return JSONResponse(json.loads(json.dumps(monitor.snapshot(), default=str)))

    async def healthz(_request):
        return JSONResponse({"ok": True})

    async def events(request):
        queue: asyncio.Queue = asyncio.Queue()
        monitor.hub.clients.add(queue)

        async def stream():
            try:
                snap = json.dumps(monitor.snapshot(), separators=(",", ":"), default=str)
                yield f"retry: 2000\nevent: snapshot\ndata: {snap}\n\n"
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                    if await request.is_disconnected():
                        break
            finally:
                monitor.hub.clients.discard(queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        monitor.loop = asyncio.get_running_loop()
        comps = monitor.record.get("components") or {}
        feed = AlertFeed(
            comps["kafka"]["bootstrap"], monitor.record["topics"]["alerts"], monitor._on_alert, monitor.stop_event
        )
        feed.start()
        ticks = asyncio.create_task(monitor.run_ticks())
        try:
            yield
        finally:
            monitor.stop_event.set()
            ticks.cancel()

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/state", api_state),
            Route("/api/events", events),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=static), name="static"),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m fp_local.monitor")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request, several a second, otherwise
    monitor = Monitor(Path(ns.state_dir))
    uvicorn.run(create_app(monitor), host=ns.host, port=ns.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
