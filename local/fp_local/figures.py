"""The live figures: read from the job's and the ingest API's Prometheus endpoints, as rates.

Pure functions and a small stateful `Rates`, shared by the page's server (fp_local.monitor) and
tested without servers. Counter names are the job's contract (docs/streaming.md).
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

JOB_PREFIX = "flink_taskmanager_job_task_operator_fraudpipe_"
COUNTERS = ("scored", "alerts", "dead_letters", "refused", "labels", "labels_pending", "remote_retries")
LATENCY = JOB_PREFIX + "scoring_latency_ms"
RUNNING_JOBS = "flink_jobmanager_numRunningJobs"
CHECKPOINTS = "flink_jobmanager_job_numberOfCompletedCheckpoints"
INGEST_RECORDS = "fraudpipe_ingest_records_total"
_QUANTILE = re.compile(r'quantile="([^"]+)"')
_QUANTILES = {"0.5": "latency_p50", "0.99": "latency_p99"}
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _samples(text: str):
    """(name, labels text, value) of each sample line."""
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        try:
            yield name, labels, float(value)
        except ValueError:
            continue


def parse_job(text: str) -> dict[str, float]:
    """Counters summed over subtasks, latency quantiles (worst subtask), running jobs, checkpoints."""
    out: dict[str, float] = {}
    for name, labels, value in _samples(text):
        if name.startswith(JOB_PREFIX):
            short = name[len(JOB_PREFIX) :]
            if short in COUNTERS:
                out[short] = out.get(short, 0.0) + value
            elif name == LATENCY and not math.isnan(value):
                m = _QUANTILE.search(labels)
                key = _QUANTILES.get(m.group(1)) if m else None
                if key:
                    out[key] = max(out.get(key, 0.0), value)
        elif name == RUNNING_JOBS:
            out["running_jobs"] = value
        elif name == CHECKPOINTS:
            out["checkpoints"] = max(out.get("checkpoints", 0.0), value)
    return out


def parse_ingest(text: str, transactions_topic: str) -> dict[str, float]:
    """Records the ingest API wrote to the transactions topic, and all it refused."""
    out = {"received": 0.0, "ingest_refused": 0.0}
    for name, labels, value in _samples(text):
        if name != INGEST_RECORDS:
            continue
        lab = dict(_LABEL.findall(labels))
        if lab.get("outcome") == "acked":
            if lab.get("topic") == transactions_topic:
                out["received"] += value
        else:
            out["ingest_refused"] += value
    return out


@dataclass
class Rates:
    """Per-second rates over the last `span_s` seconds of counters that may reset (a job restart
    starts its counters at 0), and the chart's series."""

    span_s: float = 5.0
    window_s: float = 900.0
    history: dict[str, deque] = field(default_factory=dict)
    series: deque = field(default_factory=lambda: deque(maxlen=4000))

    def rate(self, key: str, now: float, value: float | None) -> float | None:
        if value is None:
            return None
        h = self.history.setdefault(key, deque())
        if h and value < h[-1][1]:  # a reset: counting restarted from 0 since the last sample
            last_t = h[-1][0]
            h.clear()
            h.append((last_t, 0.0))
        h.append((now, value))
        while len(h) > 2 and h[1][0] <= now - self.span_s:
            h.popleft()
        t0, v0 = h[0]
        if now - t0 <= 0:
            return None
        return (value - v0) / (now - t0)

    def add(self, now: float, point: dict[str, float | None]) -> list:
        row = [round(now, 3), *(None if point.get(k) is None else round(point[k], 3) for k in SERIES)]
        self.series.append(row)
        while self.series and self.series[0][0] < now - self.window_s:
            self.series.popleft()
        return row


# The chart's lines, in the order of each series row after its time.
SERIES = ("tx_per_s", "alerts_per_s")
