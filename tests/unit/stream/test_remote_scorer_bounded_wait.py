"""Remote scoring waits for the service a bounded time, then fails the task (fake clock, fake HTTP).

The waiting happens on Flink's task thread, where no checkpoint barrier can pass: an unbounded
wait turns an outage longer than the checkpoint timeout into failed checkpoints and a restart
loop. The scorer retries with capped exponential backoff for at most --scoring-max-wait, then
raises ScoringUnavailable, so that Flink's restart strategy resumes from the last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from test_job_config import BASE as JOB_ARGS

from fp_flink.config import JobConfigError, parse_args
from fp_flink.scoring import RemoteScorer, RowsRefused, ScoringUnavailable
from fraudpipeline.features import FEATURE_NAMES

ROW = [0.0] * len(FEATURE_NAMES)


@dataclass
class Response:
    status: int
    data: bytes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeHttp:
    """Answers from a script: an exception is raised, a Response returned; each request costs `cost_s`."""

    def __init__(self, clock: FakeClock, script, cost_s: float = 0.0):
        self.clock = clock
        self.script = script
        self.cost_s = cost_s
        self.requests: list[tuple[str, str]] = []

    def request(self, method, url, body=None, timeout=None):
        self.requests.append((method, url))
        self.clock.now += self.cost_s
        answer = self.script(len(self.requests))
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def clear(self) -> None:
        pass


def ok(n_rows: int = 1) -> Response:
    results = [{"fraud_probability": 0.9, "is_fraud": True, "model_version": "v1"}] * n_rows
    return Response(200, orjson.dumps({"results": results}))


def scorer(clock: FakeClock, script, max_wait_ms: int = 10_000, cost_s: float = 0.0, concurrency: int = 1):
    retries: list[str] = []
    s = RemoteScorer(
        "http://scoring.test:3000/",
        "fraud-xgb:abc",
        0.5,
        timeout_ms=1000,
        concurrency=concurrency,
        on_retry=retries.append,
        sleep=clock.sleep,
        max_wait_ms=max_wait_ms,
        clock=clock,
    )
    s.http = FakeHttp(clock, script, cost_s)
    return s, retries


def test_a_service_that_stays_down_fails_the_call_after_the_max_wait():
    clock = FakeClock()
    s, retries = scorer(clock, lambda n: ConnectionRefusedError("refused"), max_wait_ms=10_000)
    start = clock.now
    with pytest.raises(ScoringUnavailable) as raised:
        s.score([ROW, ROW])
    waited = clock.now - start
    assert waited == pytest.approx(10.0)  # the last pause ends at the deadline, one last attempt, then up
    assert sum(clock.sleeps) == pytest.approx(10.0)
    # capped exponential backoff with jitter in [0.5, 1.5) of 0.05 s, 0.1, 0.2, ... 5 s
    nominal = [min(0.05 * 2**i, 5.0) for i in range(len(clock.sleeps))]
    for pause, base in zip(clock.sleeps[:-1], nominal, strict=False):
        assert 0.5 * base <= pause < 1.5 * base
    assert max(clock.sleeps) < 7.5
    assert len(s.http.requests) == len(clock.sleeps) + 1 == len(retries) + 1
    message = str(raised.value)
    assert "--scoring-max-wait 10s" in message and "http://scoring.test:3000" in message
    assert "ConnectionRefusedError" in message and "restart" in message


def test_slow_failures_count_against_the_max_wait():
    """Requests that time out take their time: the wait is measured by the clock, not by the pauses."""
    clock = FakeClock()
    s, _ = scorer(clock, lambda n: TimeoutError("read timed out"), max_wait_ms=5_000, cost_s=1.0)
    start = clock.now
    with pytest.raises(ScoringUnavailable):
        s.score([ROW])
    assert clock.now - start <= 5.0 + 1.0  # at most the max wait plus the attempt under way
    assert len(s.http.requests) <= 6


def test_a_service_back_within_the_max_wait_answers_the_same_call():
    clock = FakeClock()
    s, retries = scorer(clock, lambda n: Response(503, b"starting") if n <= 6 else ok(2), max_wait_ms=60_000)
    scored = s.score([ROW, ROW])
    assert list(scored.decisions) == [True, True] and scored.model_tag == "fraud-xgb:v1"
    assert len(retries) == 6 and "HTTP 503" in retries[0]


def test_a_refusal_is_not_retried_and_not_an_outage():
    clock = FakeClock()

    def script(n):
        # the batch of two is refused, then its rows one by one: the first accepted, the second refused
        return {1: Response(422, b"bad rows"), 2: ok(1), 3: Response(422, b"bad row")}[n]

    s, retries = scorer(clock, script)
    scored = s.score([ROW, ROW])
    assert list(scored.refused) == [1] and scored.decisions[0]
    assert retries == [] and clock.sleeps == []
    with pytest.raises(RowsRefused):
        scorer(clock, lambda n: Response(422, b"no"))[0]._call("POST", "/score_batch", b"{}")


def test_the_threshold_lookup_is_bounded_too():
    clock = FakeClock()
    s = RemoteScorer(
        "http://scoring.test:3000", "fraud-xgb:abc", None, 1000, 1, sleep=clock.sleep, max_wait_ms=2_000, clock=clock
    )
    s.http = FakeHttp(clock, lambda n: OSError("down"))
    with pytest.raises(ScoringUnavailable, match="GET /v1/model"):
        s.score([ROW])
    assert clock.now - 1000.0 == pytest.approx(2.0)


def test_parallel_chunks_fail_the_batch():
    clock = FakeClock()
    s, _ = scorer(clock, lambda n: ConnectionResetError("reset"), max_wait_ms=1, concurrency=2)
    with pytest.raises(ScoringUnavailable):
        s.score([ROW] * 4)  # two chunks on the pool: the failure reaches the task thread
    s.close()


def test_a_closed_scorer_stops_retrying_at_the_next_failure():
    clock = FakeClock()
    s, _ = scorer(clock, lambda n: ConnectionRefusedError("refused"), max_wait_ms=600_000)
    real_sleep = clock.sleep

    def sleep_then_close(seconds: float) -> None:
        real_sleep(seconds)
        if len(clock.sleeps) == 3:
            s.close()  # the task is being cancelled while a pool thread is still retrying

    s.sleep = sleep_then_close
    with pytest.raises(ScoringUnavailable):
        s._call("POST", "/score_batch", b"{}")
    assert len(s.http.requests) == 4


# The operator's contract (test_job_config.BASE) with remote scoring.
BASE = [*JOB_ARGS, "--scoring-mode", "remote", "--serving-url", "http://s:3000"]


def test_the_flag_and_its_default():
    assert parse_args(BASE).scoring_max_wait_ms == 60_000
    assert parse_args([*BASE, "--scoring-max-wait", "5s"]).scoring_max_wait_ms == 5_000
    assert parse_args([*BASE, "--scoring-max-wait", "1500ms"]).scoring_max_wait_ms == 1_500
    for bad in ("0s", "soon"):
        with pytest.raises(JobConfigError, match="--scoring-max-wait"):
            parse_args([*BASE, "--scoring-max-wait", bad])


def test_the_local_runner_refuses_a_max_wait_beyond_the_checkpoint_timeout(tmp_path: Path):
    from fp_flink.local import LocalOptions, run

    config = parse_args([*BASE, "--scoring-max-wait", "60s"])
    with pytest.raises(JobConfigError, match="--scoring-max-wait.*--checkpoint-timeout"):
        run(config, LocalOptions(state_dir=tmp_path, checkpoint_timeout_ms=30_000), show_progress=False)
    assert not any(tmp_path.iterdir())  # refused before anything started
