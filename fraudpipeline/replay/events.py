"""The records a replay sends, in the order it sends them.

Transactions go out in event-time order (ties in table order), keyed by card. A transaction's
label goes out `label_delay` of event time after it, before any transaction of that same instant,
keyed by terminal (the streaming job routes labels to the terminal state). Labels whose release
falls after the last replayed transaction are not sent: they could not change a feature of any
replayed transaction.

The Kafka record timestamp is left to the producer (the time of sending): event time travels in
the record's own `timestamp` field. Historical event times as record timestamps would make the
broker's time-based retention (7 days by default) delete a replay of 2018 data as soon as it is
written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import orjson
import pandas as pd

from fraudpipeline.features.offline import event_time_us

Role = Literal["transactions", "labels"]
LabelChoice = Literal["fraud", "all", "none"]


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    role: Role
    key: bytes
    value: bytes
    event_time_us: int  # position in the replay's event-time order (a label's: its release)


def _rfc3339(time_us: int) -> str:
    secs, micros = divmod(int(time_us), 1_000_000)
    base = pd.Timestamp(secs, unit="s").strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{micros:06d}Z" if micros else f"{base}Z"


def _id(value) -> str:
    return str(int(value)) if isinstance(value, (int, np.integer)) else str(value)


def transaction_record(row, time_us: int) -> dict:
    """The wire form of one table row as a transaction (docs/transactions.md)."""
    return {
        "transaction_id": _id(row.transaction_id),
        "timestamp": _rfc3339(time_us),
        "customer_id": _id(row.customer_id),
        "terminal_id": _id(row.terminal_id),
        "amount": float(row.amount),
    }


def label_record(row, time_us: int) -> dict:
    """The wire form of one table row's label: the transaction's keys and time, and `fraud`."""
    return {
        "transaction_id": _id(row.transaction_id),
        "customer_id": _id(row.customer_id),
        "terminal_id": _id(row.terminal_id),
        "timestamp": _rfc3339(time_us),
        "fraud": int(row.fraud),
    }


def replay_events(
    table: pd.DataFrame, label_delay_us: int = 7 * 86_400_000_000, labels: LabelChoice = "fraud"
) -> Iterator[ReplayEvent]:
    """Transactions and labels of `table` (canonical columns, sorted by time) in send order."""
    if table.empty:
        return
    times = event_time_us(table["timestamp"])
    order = np.argsort(times, kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    times = times[order]
    if labels == "none":
        with_label = np.zeros(len(table), dtype=bool)
    elif labels == "fraud":
        with_label = table["fraud"].to_numpy() == 1
    else:
        with_label = np.ones(len(table), dtype=bool)
    label_rows = np.flatnonzero(with_label)
    release = times[label_rows] + int(label_delay_us)
    keep = release <= times[-1]
    label_rows, release = label_rows[keep], release[keep]
    # Where each label goes: before the first transaction at or after its release time.
    insert_at = np.searchsorted(times, release, side="left")
    rows = list(table.itertuples(index=False))
    j = 0
    n_labels = len(label_rows)
    for i, row in enumerate(rows):
        while j < n_labels and insert_at[j] <= i:
            lrow = rows[label_rows[j]]
            ltime = int(times[label_rows[j]])
            yield ReplayEvent(
                "labels", _id(lrow.terminal_id).encode(), orjson.dumps(label_record(lrow, ltime)), int(release[j])
            )
            j += 1
        t = int(times[i])
        yield ReplayEvent("transactions", _id(row.customer_id).encode(), orjson.dumps(transaction_record(row, t)), t)
