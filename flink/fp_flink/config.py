"""The job's arguments: the operator's contract (docs/image-contracts.md) plus tuning flags.

The same arguments start the job on a cluster (PythonDriver: `-pym fp_flink.job ARGS`) and on one
machine (`fraudpipe stream run ARGS --state-dir DIR`).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Literal

Layout = Literal["fused", "split"]

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}


class JobConfigError(ValueError):
    """A job argument that cannot work; the message names the flag and the fix."""


def duration_ms(text: str, flag: str) -> int:
    """'30s', '200ms', '1d' -> milliseconds (a bare number is seconds)."""
    m = _DURATION.match(str(text))
    if not m:
        raise JobConfigError(f"{flag} {text!r}: give a duration such as 500ms, 30s, 5min or 1d")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


@dataclass(frozen=True)
class JobConfig:
    pipeline: str
    bootstrap_servers: str
    transactions_topic: str
    labels_topic: str
    alerts_topic: str
    dead_letter_topic: str
    group_id: str
    scoring_mode: Literal["embedded", "remote"]
    model_tag: str
    scores_topic: str | None = None
    model_path: str | None = None
    serving_url: str | None = None
    serving_timeout_ms: int = 1000
    threshold: float | None = None
    # Remote: longest a scoring request is retried before the task fails (and Flink restarts it from
    # the last checkpoint); well under the checkpoint timeout (Flink's default: 10 min).
    scoring_max_wait_ms: int = 60_000
    # Tuning; the operator passes none of these, the defaults are the measured choice.
    layout: Layout | None = None  # None: fused at parallelism 1, split above
    buckets: int = 16
    batch_size: int = 256
    batch_timeout_ms: int = 25
    serving_concurrency: int = 2
    max_out_of_orderness_ms: int = 5_000
    idle_timeout_ms: int = 10_000
    max_skew_ms: int = 86_400_000
    bounded: bool = False  # stop at the offsets that are the latest when the job starts (tests, benchmarks)

    def resolved_layout(self, parallelism: int) -> Layout:
        return self.layout or ("fused" if parallelism <= 1 else "split")

    @property
    def transactional_id_prefix(self) -> str:
        # Stable across restarts (so a restarted job aborts its predecessor's open transactions),
        # distinct per pipeline; Kafka allows these characters in transactional ids.
        return re.sub(r"[^A-Za-z0-9._-]", "-", self.group_id)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is a JobConfigError (the runners report it), not an exit."""

    def error(self, message: str):
        raise JobConfigError(f"{message} (see `{self.prog} --help`)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fp_flink.job", description="FraudPipeline streaming job (PyFlink).")
    a = p.add_argument
    a("--pipeline", required=True, help="<namespace>/<name>, for logs, metrics and alerts")
    a("--bootstrap-servers", required=True)
    a("--transactions-topic", required=True)
    a("--labels-topic", required=True)
    a("--alerts-topic", required=True)
    a("--dead-letter-topic", required=True)
    a("--scores-topic", default=None)
    a("--group-id", required=True)
    a("--scoring-mode", choices=["embedded", "remote"], required=True)
    a("--model-tag", required=True)
    a("--model-path", default=None, help="embedded: folder with model.ubj and model.json")
    a("--serving-url", default=None, help="remote: base URL of the scoring service")
    a("--serving-timeout-ms", type=int, default=1000)
    a(
        "--scoring-max-wait",
        default="60s",
        help="remote: longest a scoring request is retried while the service is down; then the task fails and "
        "Flink's restart strategy resumes from the last checkpoint. Keep it under the checkpoint timeout.",
    )
    a("--threshold", type=float, default=None)
    a(
        "--layout",
        choices=["fused", "split"],
        default=None,
        help="fused: one keyed step holds both feature halves (parallelism 1 only); split: card step then "
        "terminal step (scales out). Default: fused at parallelism 1, split above.",
    )
    a("--buckets", type=int, default=16, help="split layout: key buckets per step (the unit of parallelism)")
    a("--batch-size", type=int, default=256, help="rows per scoring call")
    a("--batch-timeout", default="25ms", help="longest a row waits for its batch to fill")
    a("--serving-concurrency", type=int, default=2, help="remote: concurrent /score_batch requests")
    a("--max-out-of-orderness", default="5s", help="watermark delay behind the newest event time")
    a("--idle-timeout", default="10s", help="a partition quiet this long does not hold back the watermark")
    a("--max-skew", default="1d", help="records further ahead of the stream's newest event are refused")
    a("--bounded", action="store_true", help="stop at the latest offsets seen at start (tests, benchmarks)")
    return p


def parse_args(argv: list[str]) -> JobConfig:
    """Parse and check the arguments; raise JobConfigError naming the flag and the fix."""
    ns, unknown = parser().parse_known_args(argv)
    if unknown:
        raise JobConfigError(f"unknown argument(s) {unknown}: see `python -m fp_flink.job --help`")
    return config_from_namespace(ns)


def config_from_namespace(ns: argparse.Namespace) -> JobConfig:
    if ns.scoring_mode == "embedded" and not ns.model_path:
        raise JobConfigError(
            "--scoring-mode embedded needs --model-path DIR (the folder with model.ubj and "
            "model.json written by `fraudpipe train --export DIR`)"
        )
    if ns.scoring_mode == "remote" and not ns.serving_url:
        raise JobConfigError(
            "--scoring-mode remote needs --serving-url URL (the scoring service, "
            "e.g. http://payments-model.fraud.svc:3000)"
        )
    from fraudpipeline.model import tag_problem

    problem = tag_problem(ns.model_tag)
    if problem:
        raise JobConfigError(f"--model-tag {problem}")
    if ns.threshold is not None and not 0.0 <= ns.threshold <= 1.0:
        raise JobConfigError(f"--threshold {ns.threshold}: give a fraud probability between 0 and 1")
    for flag, value, low in (
        ("--buckets", ns.buckets, 1),
        ("--batch-size", ns.batch_size, 1),
        ("--serving-concurrency", ns.serving_concurrency, 1),
        ("--serving-timeout-ms", ns.serving_timeout_ms, 1),
    ):
        if value < low:
            raise JobConfigError(f"{flag} {value}: must be at least {low}")
    scoring_max_wait_ms = duration_ms(ns.scoring_max_wait, "--scoring-max-wait")
    if scoring_max_wait_ms < 1:
        raise JobConfigError(f"--scoring-max-wait {ns.scoring_max_wait}: give a positive duration such as 60s")
    if ns.batch_size > 10_000:
        raise JobConfigError(f"--batch-size {ns.batch_size}: the scoring service takes at most 10000 rows a call")
    return JobConfig(
        pipeline=ns.pipeline,
        bootstrap_servers=ns.bootstrap_servers,
        transactions_topic=ns.transactions_topic,
        labels_topic=ns.labels_topic,
        alerts_topic=ns.alerts_topic,
        dead_letter_topic=ns.dead_letter_topic,
        scores_topic=ns.scores_topic,
        group_id=ns.group_id,
        scoring_mode=ns.scoring_mode,
        model_tag=ns.model_tag,
        model_path=ns.model_path,
        serving_url=ns.serving_url.rstrip("/") if ns.serving_url else None,
        serving_timeout_ms=ns.serving_timeout_ms,
        threshold=ns.threshold,
        scoring_max_wait_ms=scoring_max_wait_ms,
        layout=ns.layout,
        buckets=ns.buckets,
        batch_size=ns.batch_size,
        batch_timeout_ms=duration_ms(ns.batch_timeout, "--batch-timeout"),
        serving_concurrency=ns.serving_concurrency,
        max_out_of_orderness_ms=duration_ms(ns.max_out_of_orderness, "--max-out-of-orderness"),
        idle_timeout_ms=duration_ms(ns.idle_timeout, "--idle-timeout"),
        max_skew_ms=duration_ms(ns.max_skew, "--max-skew"),
        bounded=ns.bounded,
    )
