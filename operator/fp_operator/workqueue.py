"""A coalescing work queue (the client-go pattern): each pipeline is reconciled by one worker at a
time; requests that arrive meanwhile collapse into one more pass; delayed retries with a
per-pipeline exponential backoff.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable, Hashable


class Backoff:
    """Per-key retry delays: doubling from `base` up to `cap`, each drawn from its upper half
    (jitter, so that pipelines failing together do not retry in lockstep); `forget` on success."""

    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: Callable[[], float] = random.random):
        self.base, self.cap, self._rng = base, cap, rng
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def next(self, key: Hashable) -> float:
        with self._lock:
            n = self._failures[key] = self._failures.get(key, 0) + 1
        ceiling = min(self.cap, self.base * 2 ** min(n - 1, 32))
        return ceiling / 2 + self._rng() * ceiling / 2

    def failures(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)


class WorkQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cv = threading.Condition()
        self._queue: list[Hashable] = []
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._seq = 0
        self._closed = False

    def add(self, key: Hashable) -> None:
        with self._cv:
            if self._closed or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cv.notify()

    def add_after(self, key: Hashable, delay: float) -> None:
        if delay <= 0:
            return self.add(key)
        with self._cv:
            self._seq += 1
            heapq.heappush(self._delayed, (self._clock() + delay, self._seq, key))
            self._cv.notify()

    def get(self) -> Hashable | None:
        """Next key to process (blocks); None once the queue is shut down."""
        with self._cv:
            while True:
                if self._closed:
                    return None
                now = self._clock()
                while self._delayed and self._delayed[0][0] <= now:
                    _, _, key = heapq.heappop(self._delayed)
                    if key not in self._dirty:
                        self._dirty.add(key)
                        if key not in self._processing:
                            self._queue.append(key)
                if self._queue:
                    key = self._queue.pop(0)
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                timeout = self._delayed[0][0] - now if self._delayed else None
                self._cv.wait(timeout)

    def done(self, key: Hashable) -> None:
        with self._cv:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cv.notify()

    def __len__(self) -> int:
        with self._cv:
            return len(self._queue)

    def idle(self) -> bool:
        with self._cv:
            return not self._queue and not self._processing

    def shutdown(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
