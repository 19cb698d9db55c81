"""Send replay events through a sink at a given rate, with progress and a final count."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from fraudpipeline.replay.events import ReplayEvent


class Sink(Protocol):
    def send(self, event: ReplayEvent) -> None: ...

    def close(self) -> None: ...


@dataclass
class ReplayCounts:
    transactions: int = 0
    labels: int = 0
    seconds: float = 0.0
    first_event_time_us: int | None = None
    last_event_time_us: int | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        rate = self.transactions / self.seconds if self.seconds > 0 else None
        return {
            "transactions": self.transactions,
            "labels": self.labels,
            "seconds": round(self.seconds, 3),
            "transactions_per_s": round(rate, 1) if rate else None,
            **self.extra,
        }


def replay(
    events: Iterable[ReplayEvent],
    sink: Sink,
    rate: float | None = None,
    on_progress: Callable[[ReplayCounts], None] | None = None,
    progress_every: int = 2_000,
) -> ReplayCounts:
    """Send every event; `rate` transactions per second (labels ride along), None for flat out.

    The pace is kept against the start time, so a slow moment is caught up, not lost.
    """
    counts = ReplayCounts()
    start = time.monotonic()
    for event in events:
        if event.role == "transactions":
            if rate:
                due = start + counts.transactions / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            counts.transactions += 1
            if counts.first_event_time_us is None:
                counts.first_event_time_us = event.event_time_us
            counts.last_event_time_us = event.event_time_us
        else:
            counts.labels += 1
        sink.send(event)
        if on_progress is not None and (counts.transactions + counts.labels) % progress_every == 0:
            counts.seconds = time.monotonic() - start
            on_progress(counts)
    sink.close()
    counts.seconds = time.monotonic() - start
    if on_progress is not None:
        on_progress(counts)
    return counts
