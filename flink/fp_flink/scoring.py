"""Scoring a batch of feature vectors: in process (embedded) or through the scoring service (remote).

Both return, per row, the fraud probability and the decision, plus the model tag that made it.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from fraudpipeline.features import FEATURE_NAMES

log = logging.getLogger("fp_flink.scoring")


def import_xgboost():
    """xgboost, imported so that it also works inside Flink's thread-mode interpreter.

    xgboost imports scikit-learn when it is installed (the development environment has it, the
    image does not), and importing scikit-learn inside the interpreter that Flink embeds in its
    TaskManager (pemja) never returns. xgboost only wants it for its scikit-learn wrappers, so
    there it is made to look absent.
    """
    if "sklearn" not in sys.modules and "pyflink.fn_execution.embedded.operations" in sys.modules:
        sys.modules["sklearn"] = None  # type: ignore[assignment]
    import xgboost

    return xgboost


class ModelMismatch(RuntimeError):
    """The model on disk is not the one the pipeline asks for: the job refuses to start."""


@dataclass(frozen=True)
class Scored:
    probabilities: np.ndarray  # float64, one per row
    decisions: np.ndarray  # bool, one per row
    model_tag: str
    threshold: float
    refused: dict[int, str]  # row index -> why the model service refused that row (remote only)


class EmbeddedScorer:
    """The exported XGBoost model (`model.ubj` + `model.json`), loaded once per Python worker."""

    def __init__(self, model_path: str, model_tag: str, threshold: float | None):
        import_xgboost()
        from fraudpipeline.model import ModelContractError, load_export

        directory = Path(model_path)
        try:
            booster, meta = load_export(directory)
        except ModelContractError as exc:
            raise ModelMismatch(f"--model-path: {exc}") from None
        if meta.tag and meta.tag != model_tag:
            raise ModelMismatch(
                f"model tags differ: --model-tag is {model_tag!r} but {directory}/model.json "
                f"holds {meta.tag!r}; export the model the pipeline names, or set "
                f"spec.model.modelTag to {meta.tag!r}"
            )
        booster.set_param({"nthread": 1})  # one thread per worker: the other core runs Kafka and Flink
        self.booster = booster
        self.model_tag = model_tag
        self.threshold = float(meta.threshold if threshold is None else threshold)

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        matrix = np.asarray(rows, dtype=np.float32)
        probs = self.booster.inplace_predict(matrix).astype(np.float64)
        return Scored(probs, probs >= self.threshold, self.model_tag, self.threshold, {})

    def close(self) -> None:
        pass


class RemoteScorer:
    """POST /score_batch to the scoring service, with bounded concurrency, timeouts and retries.

    A request is retried with capped exponential backoff for at most `max_wait_ms` (from its first
    attempt; plus at most one request timeout for the attempt under way): while the service is
    down the job takes no input (back-pressure). Beyond that it raises ScoringUnavailable, which
    fails the task: the waiting happens on the task thread, where no checkpoint can pass, so
    waiting longer than the checkpoint timeout would only fail every checkpoint. Flink's restart
    strategy then resumes from the last checkpoint, and the rows not yet decided are scored again
    (the outputs of the failed attempt are never committed): nothing is dropped, nothing decided
    twice. A 422 for a batch is narrowed down by scoring its rows one by one, so that only the
    rows the service refuses become dead letters.
    """

    MAX_ROWS = 10_000
    FIRST_DELAY_S = 0.05
    MAX_DELAY_S = 5.0

    def __init__(
        self,
        url: str,
        model_tag: str,
        threshold: float | None,
        timeout_ms: int,
        concurrency: int,
        on_retry: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_ms: int = 60_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        import urllib3

        self.url = url.rstrip("/")
        self.model_tag = model_tag
        self._threshold = threshold
        self.timeout = urllib3.Timeout(total=timeout_ms / 1000.0)
        self.http = urllib3.PoolManager(
            maxsize=concurrency, retries=False, headers={"Content-Type": "application/json"}
        )
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fp-score")
        self.concurrency = concurrency
        self.on_retry = on_retry or (lambda reason: None)
        self.sleep = sleep
        self.max_wait_s = max_wait_ms / 1000.0
        self.clock = clock
        self._closed = threading.Event()
        self.service_threshold: float | None = None

    @property
    def threshold(self) -> float:
        if self._threshold is not None:
            return self._threshold
        if self.service_threshold is None:
            self.service_threshold = float(self._call("GET", "/v1/model")["threshold"])
        return self.service_threshold

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict:
        """One request, retried until the service answers 2xx or a 4xx it means (422 is raised), for
        at most `max_wait_ms` from the first attempt; then ScoringUnavailable."""
        delay = self.FIRST_DELAY_S
        started = self.clock()
        attempts = 0
        while True:
            attempts += 1
            try:
                resp = self.http.request(method, self.url + path, body=body, timeout=self.timeout)
                if resp.status < 300:
                    return orjson.loads(resp.data)
                if resp.status == 422:
                    raise RowsRefused(resp.data.decode(errors="replace")[:2000])
                reason = f"{method} {path}: HTTP {resp.status} {resp.data[:200]!r}"
            except RowsRefused:
                raise
            except Exception as exc:  # noqa: BLE001 - connection refused, timeout, reset: all retried
                reason = f"{method} {path}: {type(exc).__name__}: {exc}"
            waited = self.clock() - started
            left = self.max_wait_s - waited
            if left <= 0 or self._closed.is_set():
                raise ScoringUnavailable(
                    f"the scoring service at {self.url} did not answer for {waited:.1f} s "
                    f"({attempts} attempts; --scoring-max-wait {self.max_wait_s:g}s): {reason}. "
                    "The task fails so that Flink's restart strategy resumes from the last checkpoint; "
                    "nothing decided is lost and the rows not yet decided are scored again."
                )
            self.on_retry(reason)
            pause = min(delay * (0.5 + random.random()), left)
            log.warning("scoring service unavailable, retrying in %.2f s (%.1f s left): %s", pause, left, reason)
            self.sleep(pause)
            delay = min(delay * 2, self.MAX_DELAY_S)

    def _score_chunk(self, rows: Sequence[Sequence[float]]) -> tuple[list[float], list[bool], str, dict[int, str]]:
        payload = orjson.dumps({"rows": [dict(zip(FEATURE_NAMES, map(float, r))) for r in rows]})
        try:
            results = self._call("POST", "/score_batch", payload)["results"]
        except RowsRefused:
            if len(rows) == 1:
                raise
            return self._score_one_by_one(rows)
        probs = [r["fraud_probability"] for r in results]
        decisions = [r["is_fraud"] for r in results]
        version = results[0].get("model_version") if results else None
        tag = f"{self.model_tag.split(':', 1)[0]}:{version}" if version else self.model_tag
        return probs, decisions, tag, {}

    def _score_one_by_one(self, rows):
        probs, decisions, refused, tag = [], [], {}, self.model_tag
        for i, row in enumerate(rows):
            try:
                p, d, tag, _ = self._score_chunk([row])
                probs += p
                decisions += d
            except RowsRefused as exc:
                refused[i] = f"the scoring service refused the feature vector: {exc}"
                probs.append(float("nan"))
                decisions.append(False)
        return probs, decisions, tag, refused

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        threshold = self.threshold
        size = max(1, min(self.MAX_ROWS, -(-len(rows) // self.concurrency)))
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
        parts = list(self.pool.map(self._score_chunk, chunks)) if len(chunks) > 1 else [self._score_chunk(chunks[0])]
        probs: list[float] = []
        decisions: list[bool] = []
        refused: dict[int, str] = {}
        tag = self.model_tag
        for k, (p, d, part_tag, bad) in enumerate(parts):
            tag = part_tag  # the service's own version, as it answered
            refused.update({k * size + i: why for i, why in bad.items()})
            probs += p
            decisions += d
        probs_arr = np.asarray(probs, dtype=np.float64)
        if self._threshold is not None:  # the pipeline's threshold wins over the service's decision
            decided = probs_arr >= self._threshold
        else:
            decided = np.asarray(decisions, dtype=bool)
        return Scored(probs_arr, decided, tag, threshold, refused)

    def close(self) -> None:
        self._closed.set()  # a request still retrying on the pool gives up at its next failure
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.http.clear()


class RowsRefused(ValueError):
    """The scoring service answered 422: the request's rows break its schema."""


class ScoringUnavailable(RuntimeError):
    """The scoring service did not answer within --scoring-max-wait: the task fails and restarts."""
