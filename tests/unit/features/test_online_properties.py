"""Property tests: random streams of transactions, labels, repeats, late and future records.

Each example is run through `StreamClock`, `CustomerState` and `TerminalState` as the streaming
job runs them (the clock first, then the card half, then the terminal half; a refusal stops
the record). Every half that takes a record must return what the offline implementation
computes over the records that half took so far (its own one last), with each transaction's
fraud value being the last label that has arrived for it: exactly, bit for bit, whenever the
record is at most `LATENESS_US` older than its key's newest transaction.

Settings (docs/features.md): 300 examples, each up to 40 transactions over 3 cards and 3
terminals with gaps that land on window edges, up to 1 in 4 late by up to 2 days, up to 60
labels (before or after their transaction, some corrected), up to 10 repeats (same record, or
same id with another time and amount) and up to 5 records from the future; no deadline, no
example database (the shared work tree stays clean), a random seed per run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudpipeline.features import online
from fraudpipeline.features.offline import customer_features, terminal_features
from fraudpipeline.features.online import (
    LATENESS_US,
    MAX_SKEW_US,
    US_PER_DAY,
    CustomerState,
    DuplicateTransaction,
    FutureRecord,
    LabelOutcome,
    StreamClock,
    TerminalState,
)

T0 = 1_527_811_200_000_000  # 2018-06-01T00:00:00Z
HOUR = 3_600_000_000
# Gaps between consecutive transactions: exact window edges (1, 7, 8, 14, 30, 37 days and a
# microsecond either side), ties, and anything up to 12 days.
EDGES = [0, 0, 1, HOUR] + [d * US_PER_DAY + e for d in (1, 7, 8, 14, 30, 31, 37, 38) for e in (-1, 0, 1)]
GAPS = st.one_of(st.sampled_from(EDGES), st.integers(0, 12 * US_PER_DAY))
SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Tx:
    tid: str
    time: int  # event time
    now: int  # the wall clock when it arrives (the stream is live)
    customer: int
    terminal: int
    amount: float


@st.composite
def streams(draw) -> list[tuple]:
    n = draw(st.integers(1, 40))
    now = T0
    txs: list[Tx] = []
    for i in range(n):
        now += draw(GAPS)
        late = draw(st.one_of(st.just(0), st.just(0), st.just(0), st.integers(0, 2 * US_PER_DAY)))
        amount = draw(st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
        txs.append(Tx(f"tx{i}", now - late, now, draw(st.integers(0, 2)), draw(st.integers(0, 2)), amount))
    events: list[tuple] = [("tx", tx) for tx in txs]
    for _ in range(draw(st.integers(0, 10))):  # repeats, always after their original
        k = draw(st.integers(0, n - 1))
        orig = txs[k]
        if draw(st.booleans()):
            dup = orig
        else:
            dup = Tx(
                orig.tid,
                orig.time + draw(st.integers(-2 * US_PER_DAY, 2 * US_PER_DAY)),
                orig.now,
                orig.customer,
                orig.terminal,
                draw(st.floats(0, 1e6, allow_nan=False)),
            )
        at = draw(st.integers(events.index(("tx", orig)) + 1, len(events)))
        now_at = _now_at(events, at)
        events.insert(at, ("tx", Tx(dup.tid, min(dup.time, now_at), now_at, dup.customer, dup.terminal, dup.amount)))
    for j in range(draw(st.integers(0, 5))):  # from the future: past the skew, up to ~80 years
        at = draw(st.integers(0, len(events)))
        now_at = _now_at(events, at)
        ahead = draw(st.sampled_from([MAX_SKEW_US + 1, 3 * US_PER_DAY, 30_000 * US_PER_DAY]))  # vs the wall
        events.insert(at, ("tx", Tx(f"future{j}", now_at + ahead, now_at, 0, 0, 1.0)))
    for _ in range(draw(st.integers(0, 60))):  # labels, anywhere (before their transaction too)
        tx = txs[draw(st.integers(0, n - 1))]
        at = draw(st.integers(0, len(events)))
        events.insert(at, ("label", tx, draw(st.integers(0, 1)), _now_at(events, at)))
    return events


def _now_at(events: list[tuple], at: int) -> int:
    """The wall clock at position `at`: that of the last transaction before it."""
    for ev in reversed(events[:at]):
        if ev[0] == "tx" and not ev[1].tid.startswith("future"):
            return ev[1].now
    return T0


@pytest.fixture
def wall(monkeypatch) -> list[int]:
    """A wall clock the test moves (the stream is replayed as if live)."""
    now = [T0]
    monkeypatch.setattr(online, "wall_clock_us", lambda: now[0])
    monkeypatch.setattr(online, "_wall_limit_us", 0)
    return now


def _last_customer_row(taken: list[Tx]) -> tuple[float, ...]:
    cols = customer_features(
        np.array([t.customer for t in taken]),
        np.array([t.time for t in taken], dtype=np.int64),
        np.array([t.amount for t in taken]),
    )
    return tuple(
        float(cols[name][-1]) for w in (1, 7, 30) for name in (f"customer_nb_tx_{w}day", f"customer_avg_amount_{w}day")
    )


def _last_terminal_row(taken: list[Tx], labels: dict[str, int]) -> tuple[float, ...]:
    cols = terminal_features(
        np.array([t.terminal for t in taken]),
        np.array([t.time for t in taken], dtype=np.int64),
        np.array([labels.get(t.tid, 0) for t in taken]),
    )
    return tuple(
        float(cols[name][-1]) for w in (1, 7, 30) for name in (f"terminal_nb_tx_{w}day", f"terminal_risk_{w}day")
    )


class ClockOracle:
    """The documented StreamClock rule, written out independently (no recovery: < 1,000 events)."""

    def __init__(self) -> None:
        self.newest: int | None = None
        self.at = 0

    def ahead(self, time: int, now: int) -> bool:
        if self.newest is None:
            return time > now + MAX_SKEW_US
        return time > self.newest + max(0, now - self.at) + MAX_SKEW_US

    def admit(self, time: int, now: int) -> None:
        if self.newest is None or time > self.newest:
            self.newest, self.at = time, now


def replay(events: list[tuple], wall: list[int], seen: Counter) -> None:
    wall[0] = T0  # a new example: the wall clock starts again (and so does the states' cached limit)
    online._wall_limit_us = 0
    clock = StreamClock()
    oracle = ClockOracle()
    customers: dict[int, CustomerState] = {}
    terminals: dict[int, TerminalState] = {}
    by_customer: dict[int, list[Tx]] = {}
    by_terminal: dict[int, list[Tx]] = {}
    labels: dict[str, int] = {}  # the last label admitted per transaction id
    for ev in events:
        if ev[0] == "label":
            _, tx, fraud, now = ev
            wall[0] = max(wall[0], now)  # the wall clock never goes back
            if oracle.ahead(tx.time, wall[0]):  # a label that came well before its transaction
                with pytest.raises(FutureRecord):
                    clock.admit(tx.time)
                seen["refused: future label"] += 1
                continue
            clock.admit(tx.time)  # labels carry their transaction's time
            oracle.admit(tx.time, wall[0])
            ts = terminals.setdefault(tx.terminal, TerminalState())
            if tx.time > wall[0] + MAX_SKEW_US:  # the states' own guard: the wall clock
                with pytest.raises(FutureRecord):
                    ts.add_label(tx.time, tx.tid, fraud)
                seen["refused: future label (state)"] += 1
                continue
            outcome = ts.add_label(tx.time, tx.tid, fraud)
            assert outcome in (LabelOutcome.APPLIED, LabelOutcome.PENDING, LabelOutcome.TOO_OLD)
            seen[f"label {outcome}"] += 1
            labels[tx.tid] = fraud
            continue
        tx = ev[1]
        wall[0] = now = max(wall[0], tx.now)
        if tx.time > now + 1_000 * US_PER_DAY:
            assert oracle.ahead(tx.time, now)
        if oracle.ahead(tx.time, now):
            with pytest.raises(FutureRecord) as err:
                clock.admit(tx.time)
            assert err.value.field == "timestamp"
            seen["refused: future"] += 1
            continue
        clock.admit(tx.time)
        oracle.admit(tx.time, now)
        cs = customers.setdefault(tx.customer, CustomerState())
        c_newest = cs.newest_us
        if tx.time > now + MAX_SKEW_US:  # the states' own guard: the wall clock
            with pytest.raises(FutureRecord):
                cs.update(tx.time, tx.amount, tx.tid)
            seen["refused: future (state)"] += 1
            continue
        try:
            c6 = cs.update(tx.time, tx.amount, tx.tid)
        except DuplicateTransaction:
            assert cs.contains(tx.tid)
            seen["refused: repeat (card)"] += 1
            continue
        by_customer.setdefault(tx.customer, []).append(tx)
        if c_newest is None or tx.time >= c_newest - LATENESS_US:
            assert c6 == _last_customer_row(by_customer[tx.customer]), tx
            seen["card half compared"] += 1
        else:
            seen["card half: later than the allowance"] += 1
        if c_newest is not None and tx.time < c_newest:
            seen["out of order (card)"] += 1
        ts = terminals.setdefault(tx.terminal, TerminalState())
        t_newest = ts.newest_us
        try:
            t6 = ts.update(tx.time, tx.tid)
        except DuplicateTransaction:
            # Only a repeat with another time, once the card no longer holds the original.
            seen["refused: repeat (terminal only)"] += 1
            continue
        by_terminal.setdefault(tx.terminal, []).append(tx)
        if t_newest is None or tx.time >= t_newest - LATENESS_US:
            assert t6 == _last_terminal_row(by_terminal[tx.terminal], labels), tx
            seen["terminal half compared"] += 1
            if any(t6[1::2]):
                seen["terminal risk > 0"] += 1
    for state in (*customers.values(), *terminals.values()):
        assert all(state.contains(i) for i in state.ids)  # the ids index survives every path


def test_online_equals_offline_on_random_streams(wall):
    seen: Counter = Counter()

    @SETTINGS
    @given(streams())
    def check(events):
        replay(events, wall, seen)

    check()
    print("\nproperty test, what the examples exercised:", dict(sorted(seen.items())))
    # The strategy must reach every case it is there for.
    for case in (
        "card half compared",
        "terminal half compared",
        "terminal risk > 0",
        "refused: future",
        "refused: repeat (card)",
        "label applied",
        "label pending",
        "out of order (card)",
        "card half: later than the allowance",
    ):
        assert seen[case] > 0, (case, seen)
