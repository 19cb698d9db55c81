"""The coalescing work queue: one worker per key, bursts collapse, delays honoured."""

from __future__ import annotations

from fp_operator.workqueue import WorkQueue


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_burst_of_events_collapses_into_one_pass():
    q = WorkQueue()
    for _ in range(10):
        q.add("a")
    q.add("b")
    assert q.get() == "a" and q.get() == "b" and len(q) == 0


def test_key_added_while_processing_is_processed_once_more_after():
    q = WorkQueue()
    q.add("a")
    assert q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first runs
    q.done("a")
    assert q.get() == "a"
    q.done("a")
    assert q.idle()


def test_delayed_add_waits_for_its_time():
    clock = Clock()
    q = WorkQueue(clock=clock)
    q.add_after("a", 5)
    q.add("b")
    assert q.get() == "b"
    q.done("b")
    clock.t = 5.0
    assert q.get() == "a"


def test_shutdown_releases_waiting_workers():
    import threading

    q = WorkQueue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.shutdown()
    t.join(timeout=5)
    assert got == [None]


def test_backoff_doubles_per_key_up_to_its_cap_with_jitter_and_resets():
    from fp_operator.workqueue import Backoff

    low, high = Backoff(base=0.5, cap=60, rng=lambda: 0.0), Backoff(base=0.5, cap=60, rng=lambda: 0.999999)
    assert [low.next("a") for _ in range(4)] == [0.25, 0.5, 1.0, 2.0]  # the lower half of each range
    assert round(high.next("a"), 3) == 0.5 and low.next("b") == 0.25  # per key
    for _ in range(20):
        delay = high.next("a")
    assert 30 <= delay <= 60  # capped
    low.forget("a")
    assert low.next("a") == 0.25 and low.failures("a") == 1
