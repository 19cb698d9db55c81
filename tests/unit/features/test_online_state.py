"""The per-key online states: window edges, labels, bounded size, compact serialisation."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import numpy as np
import pytest

from fraudpipeline.features import FEATURE_NAMES, LABEL_DELAY_DAYS, online
from fraudpipeline.features.online import (
    LATENESS_US,
    MAX_PENDING_LABELS,
    US_PER_DAY,
    CustomerState,
    DuplicateTransaction,
    FutureRecord,
    LabelOutcome,
    RecordRefused,
    StreamClock,
    TerminalState,
    feature_vector,
    time_flags,
)
from fraudpipeline.transactions import event_time_us

T0 = event_time_us(datetime(2018, 7, 25, 12, 0, tzinfo=UTC))  # a Wednesday
HOUR = 3_600_000_000


@pytest.mark.parametrize(
    ("iso", "weekend", "night"),
    [
        ("2018-07-25T00:00:00Z", 0.0, 1.0),  # Wednesday midnight
        ("2018-07-25T06:59:59Z", 0.0, 1.0),  # hour 6 is night (handbook: hour <= 6)
        ("2018-07-25T07:00:00Z", 0.0, 0.0),
        ("2018-07-27T23:59:59Z", 0.0, 0.0),  # Friday
        ("2018-07-28T00:00:00Z", 1.0, 1.0),  # Saturday
        ("2018-07-29T23:59:59Z", 1.0, 0.0),  # Sunday
        ("2018-07-30T00:00:00Z", 0.0, 1.0),  # Monday
        ("2018-07-28T01:30:00+02:00", 0.0, 0.0),  # Friday 23:30 UTC: flags use UTC
    ],
)
def test_time_flags(iso, weekend, night):
    t = event_time_us(datetime.fromisoformat(iso.replace("Z", "+00:00")))
    assert time_flags(t) == (weekend, night)
    # One definition serves offline too: the same arithmetic over an int64 array.
    w, n = time_flags(np.array([t, t], dtype=np.int64))
    assert w.dtype == np.float64 and (w.tolist(), n.tolist()) == ([weekend] * 2, [night] * 2)


def test_customer_window_is_open_on_the_left_and_includes_the_current_transaction():
    s = CustomerState()
    assert s.update(T0, 10.0, "a")[:2] == (1.0, 10.0)
    # Exactly one day later the first transaction has left the 1-day window (t - 1d, t].
    nb1, avg1, nb7, avg7, nb30, avg30 = s.update(T0 + US_PER_DAY, 30.0, "b")
    assert (nb1, avg1) == (1.0, 30.0)
    assert (nb7, avg7) == (2.0, 20.0)
    # One microsecond less than a day: still inside.
    s2 = CustomerState()
    s2.update(T0, 10.0, "a")
    assert s2.update(T0 + US_PER_DAY - 1, 30.0, "b")[:2] == (2.0, 20.0)
    # Same instant: both count (ties keep arrival order, the later sees the earlier).
    s3 = CustomerState()
    s3.update(T0, 1.0, "a")
    assert s3.update(T0, 3.0, "b")[:2] == (2.0, 2.0)


def test_terminal_window_is_delayed_by_seven_days():
    s = TerminalState()
    assert s.update(T0, "a") == (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # empty window: risk 0
    s.add_label(T0, "a", 1)
    # 7 days later exactly: "a" is at t - 7d, inside (t - 8d, t - 7d].
    assert s.update(T0 + 7 * US_PER_DAY, "b") == (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    # 8 days later: "a" left the 1-day window but stays in the 7 and 30-day ones.
    assert s.update(T0 + 8 * US_PER_DAY, "c") == (0.0, 0.0, 1.0, 1.0, 1.0, 1.0)
    # 30-day window (t - 37d, t - 7d] at T0 + 15d holds a (fraud), b and c (no label yet):
    # unlabelled transactions count as genuine.
    out = s.update(T0 + 15 * US_PER_DAY, "d")
    assert out[4:6] == (3.0, 1 / 3)


def test_label_before_its_transaction_waits_and_is_merged_not_double_counted():
    s = TerminalState()
    assert s.add_label(T0, "x", 1) == LabelOutcome.PENDING
    assert len(s) == 0 and s.pending_labels == 1 and not s.contains("x")
    s.update(T0, "x")
    assert len(s) == 1 and s.pending_labels == 0 and s.contains("x")
    assert s.update(T0 + 7 * US_PER_DAY, "y")[:2] == (1.0, 1.0)
    assert s.add_label(T0, "x", 0) == LabelOutcome.APPLIED  # a corrected label overwrites
    assert s.update(T0 + 7 * US_PER_DAY + 1, "z")[:2] == (1.0, 0.0)


def test_a_label_for_an_unseen_transaction_never_counts_as_one():
    """The issue's case: add_label(T0, "ghost", 1), then an update 7 days later saw (1.0, 1.0)."""
    s = TerminalState()
    assert s.add_label(T0, "ghost", 1) == LabelOutcome.PENDING
    assert s.update(T0 + 7 * US_PER_DAY, "real") == (0.0,) * 6
    assert not s.contains("ghost") and len(s) == 1


def test_pending_labels_wait_a_bounded_time_and_count():
    s = TerminalState()
    s.update(T0, "first")
    assert s.add_label(T0 + HOUR, "late-tx", 1) == LabelOutcome.PENDING
    # The terminal moves on: once its newest event is past the label's time + delay + 30 days
    # + the lateness allowance, the transaction could not be kept if it came: the label goes.
    keep = (LABEL_DELAY_DAYS + 30) * US_PER_DAY + LATENESS_US
    s.update(T0 + HOUR + keep - 1, "a")
    assert s.pending_labels == 1
    s.update(T0 + HOUR + keep, "b")
    assert s.pending_labels == 0
    # Too old to matter at arrival: not kept at all.
    assert s.add_label(T0, "older", 1) == LabelOutcome.TOO_OLD
    # At most MAX_PENDING_LABELS wait; then new ones are dropped (and said so).
    t = TerminalState()
    for k in range(MAX_PENDING_LABELS):
        assert t.add_label(T0, f"p{k}", 1) == LabelOutcome.PENDING
    assert t.add_label(T0, "one-more", 1) == LabelOutcome.DROPPED
    assert t.add_label(T0, "p3", 0) == LabelOutcome.PENDING  # a waiting one may still be corrected
    assert t.pending_labels == MAX_PENDING_LABELS


def test_a_repeated_transaction_is_refused_and_changes_nothing():
    """The issue's case: a transaction seen twice counted twice for the customer."""
    c, t = CustomerState(), TerminalState()
    c.update(T0, 10.0, "tx-1")
    t.update(T0, "tx-1")
    before_c, before_t = pickle.dumps(c), pickle.dumps(t)
    for time in (T0, T0 + HOUR, T0 - HOUR):  # the same id with the same or another time
        with pytest.raises(DuplicateTransaction) as err:
            c.update(time, 10.0, "tx-1")
        assert (
            err.value.field == "transaction_id"
            and "'tx-1'" in str(err.value)
            and "new transaction_id" in str(err.value)
        )
        with pytest.raises(DuplicateTransaction):
            t.update(time, "tx-1")
    assert pickle.dumps(c) == before_c and pickle.dumps(t) == before_t
    assert isinstance(err.value, RecordRefused) and isinstance(err.value, ValueError)
    assert c.update(T0 + 2 * HOUR, 30.0, "tx-2")[:2] == (2.0, 20.0)
    # Also after a pickle round trip (the index is rebuilt).
    with pytest.raises(DuplicateTransaction):
        pickle.loads(pickle.dumps(c)).update(T0 + 3 * HOUR, 1.0, "tx-2")
    with pytest.raises(DuplicateTransaction):
        pickle.loads(pickle.dumps(t)).update(T0 + 3 * HOUR, "tx-1")


def test_a_far_future_record_cannot_evict_a_key_s_history():
    """The issue's case: one far-future timestamp emptied the key's state."""
    far = event_time_us(datetime(2100, 1, 1, tzinfo=UTC))
    c, t = CustomerState(), TerminalState()
    for k in range(5):
        c.update(T0 + k * HOUR, 10.0, f"tx{k}")
        t.update(T0 + k * HOUR, f"tx{k}")
    for call in (
        lambda: c.update(far, 1.0, "future"),
        lambda: t.update(far, "future"),
        lambda: t.add_label(far, "future", 1),
    ):
        with pytest.raises(FutureRecord) as err:
            call()
        assert err.value.field == "timestamp" and "2100-01-01T00:00:00Z" in str(err.value)
        assert "the wall clock" in str(err.value)
    assert len(c) == 5 and len(t) == 5 and t.pending_labels == 0
    assert c.update(T0 + 6 * HOUR, 10.0, "next")[:2] == (6.0, 10.0)


def test_stream_clock_refuses_records_past_the_skew(monkeypatch):
    wall = [event_time_us(datetime(2026, 11, 30, tzinfo=UTC))]
    monkeypatch.setattr(online, "wall_clock_us", lambda: wall[0])
    clock = StreamClock()
    # Before any event the wall clock is the reference: a far-future first record is caught.
    with pytest.raises(FutureRecord) as err:
        clock.admit(wall[0] + 2 * US_PER_DAY)
    assert "the wall clock" in str(err.value) and clock.newest_us is None
    clock.admit(T0)  # a replay of 2018 data: its newest event becomes the reference
    clock.admit(T0 + US_PER_DAY)  # exactly the skew: admitted
    with pytest.raises(FutureRecord) as err:
        clock.admit(T0 + 2 * US_PER_DAY + 1, field="label.timestamp")
    assert err.value.field == "label.timestamp" and "newest event of the stream" in str(err.value)
    assert "fix the producer's clock" in str(err.value)
    clock.admit(T0 - 30 * US_PER_DAY)  # older records are always admitted
    assert clock.newest_us == T0 + US_PER_DAY
    # The stream pauses for three days of wall-clock time: the reference moves with it.
    wall[0] += 3 * US_PER_DAY
    clock.admit(T0 + 4 * US_PER_DAY)
    restored = pickle.loads(pickle.dumps(clock))
    assert (restored.newest_us, restored.max_skew_us) == (T0 + 4 * US_PER_DAY, US_PER_DAY)
    assert len(pickle.dumps(clock, protocol=pickle.HIGHEST_PROTOCOL)) < 120
    with pytest.raises(FutureRecord) as err:
        StreamClock(max_skew_us=0).admit(wall[0] + 1)
    assert pickle.loads(pickle.dumps(err.value)).field == "timestamp"  # crosses processes intact


def test_stream_clock_is_not_held_back_for_ever_by_a_straggler(monkeypatch):
    wall = [T0 + 3 * US_PER_DAY]
    monkeypatch.setattr(online, "wall_clock_us", lambda: wall[0])
    clock = StreamClock(recover_after=3)
    clock.admit(T0)  # the first record is three days late
    for _ in range(2):  # on-time records are refused...
        wall[0] += 1
        with pytest.raises(FutureRecord):
            clock.admit(wall[0])
    wall[0] += 1
    clock.admit(wall[0])  # ...until `recover_after` in a row: the clock re-anchors
    assert clock.newest_us == wall[0]
    # A record ahead of the wall clock never counts towards that.
    bogus = StreamClock(recover_after=1)
    bogus.admit(wall[0])
    with pytest.raises(FutureRecord):
        bogus.admit(wall[0] + 5 * US_PER_DAY)


def test_late_transactions_are_exact_within_the_allowance_and_never_kept_beyond():
    c = CustomerState()
    c.update(T0 + HOUR, 10.0, "old")
    c.update(T0 + 31 * US_PER_DAY, 20.0, "new")  # "old" is kept: it may serve a late transaction
    # One day late (the allowance): its 30-day window (T0, T0 + 30d] still holds "old".
    assert c.update(T0 + 30 * US_PER_DAY, 30.0, "late")[4:] == (2.0, 20.0)
    # A transaction older than newest - 31 days is scored against what is left and not kept.
    very_late = c.update(T0 - US_PER_DAY, 5.0, "very-late")
    assert very_late[:2] == (1.0, 5.0) and not c.contains("very-late")


def test_expired_says_when_a_key_can_be_cleared():
    c, t = CustomerState(), TerminalState()
    assert c.expired(T0) and t.expired(T0)
    c.update(T0, 10.0, "a")
    t.update(T0, "a")
    assert not c.expired(T0 + 30 * US_PER_DAY - 1) and c.expired(T0 + 30 * US_PER_DAY)
    assert not t.expired(T0 + 37 * US_PER_DAY - 1) and t.expired(T0 + 37 * US_PER_DAY)
    # A waiting label keeps the terminal alive: its transaction may still come.
    t.add_label(T0 + 10 * US_PER_DAY, "b", 1)
    assert not t.expired(T0 + 37 * US_PER_DAY)
    assert t.expired(T0 + 47 * US_PER_DAY)


def test_state_stays_bounded_and_old_labels_are_refused():
    c, t = CustomerState(), TerminalState()
    for day in range(200):
        for k in range(5):
            time = T0 + day * US_PER_DAY + k * HOUR
            c.update(time, 10.0, f"{day}-{k}")
            t.update(time, f"{day}-{k}")
    assert len(c) <= 31 * 5 + 1
    assert len(t) <= 38 * 5 + 1
    assert t.add_label(T0, "0-0", 1) == LabelOutcome.TOO_OLD  # far older than delay + 30 days


def test_states_survive_pickle_and_bytes():
    c, t = CustomerState(), TerminalState()
    for k in range(50):
        c.update(T0 + k * HOUR, 1.5 * k, f"tx{k}")
        t.update(T0 + k * HOUR, f"tx{k}")
        t.add_label(T0 + k * HOUR, f"tx{k}", k % 2)
    t.add_label(T0 + 60 * HOUR, "waiting", 1)
    for restored in (pickle.loads(pickle.dumps(c)), CustomerState.from_bytes(c.to_bytes())):
        assert restored.ids == c.ids
        assert restored.update(T0 + 60 * HOUR, 7.0, "n") == CustomerState.from_bytes(c.to_bytes()).update(
            T0 + 60 * HOUR, 7.0, "n"
        )
    blob = pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(blob)
    assert back.pending_labels == 1 and back.ids == t.ids
    assert back.update(T0 + 9 * US_PER_DAY, "n") == t.update(T0 + 9 * US_PER_DAY, "n")
    assert back.update(T0 + 60 * HOUR, "waiting") == t.update(T0 + 60 * HOUR, "waiting")
    assert back.add_label(T0 + 60 * HOUR, "waiting", 0) == LabelOutcome.APPLIED
    # 50 entries: compact (8-byte time, 8-byte amount or 1-byte label, the id's characters).
    assert len(pickle.dumps(c, protocol=pickle.HIGHEST_PROTOCOL)) < 1_500
    assert len(blob) < 1_000


@pytest.mark.parametrize("ids", [["a\x1fb", "c"], [""], ["", "x"], ["é-ü", "日本"]])
def test_odd_transaction_ids_survive_pickling(ids):
    c = CustomerState()
    for k, tid in enumerate(ids):
        c.update(T0 + k, 1.0, tid)
    for back in (pickle.loads(pickle.dumps(c)), CustomerState.from_bytes(c.to_bytes())):
        assert back.ids == ids and all(back.contains(i) for i in ids)


def test_feature_vector_order():
    vec = feature_vector(T0, 12.5, (1.0, 12.5, 2.0, 11.0, 3.0, 10.0), (4.0, 0.25, 5.0, 0.2, 6.0, 0.5))
    assert len(vec) == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, vec))
    assert named["tx_amount"] == 12.5
    assert named["customer_avg_amount_7day"] == 11.0
    assert named["terminal_risk_30day"] == 0.5
