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
