"""The per-key online states: window edges, labels, bounded size, compact serialisation."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import pytest

from fraudpipeline.features import FEATURE_NAMES
from fraudpipeline.features.online import (
    US_PER_DAY,
    CustomerState,
    TerminalState,
    feature_vector,
    time_flags,
)
from fraudpipeline.transactions import event_time_us

T0 = event_time_us(datetime(2018, 7, 25, 12, 0, tzinfo=timezone.utc))  # a Wednesday
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
    assert time_flags(event_time_us(datetime.fromisoformat(iso.replace("Z", "+00:00")))) == (weekend, night)


def test_customer_window_is_open_on_the_left_and_includes_the_current_transaction():
    s = CustomerState()
    assert s.update(T0, 10.0)[:2] == (1.0, 10.0)
    # Exactly one day later the first transaction has left the 1-day window (t - 1d, t].
    nb1, avg1, nb7, avg7, nb30, avg30 = s.update(T0 + US_PER_DAY, 30.0)
    assert (nb1, avg1) == (1.0, 30.0)
    assert (nb7, avg7) == (2.0, 20.0)
    # One microsecond less than a day: still inside.
    s2 = CustomerState()
    s2.update(T0, 10.0)
    assert s2.update(T0 + US_PER_DAY - 1, 30.0)[:2] == (2.0, 20.0)
    # Same instant: both count (ties keep arrival order, the later sees the earlier).
    s3 = CustomerState()
    s3.update(T0, 1.0)
    assert s3.update(T0, 3.0)[:2] == (2.0, 2.0)


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


def test_label_before_its_transaction_is_merged_not_double_counted():
    s = TerminalState()
    s.add_label(T0, "x", 1)
    s.update(T0, "x")
    assert len(s) == 1
    assert s.update(T0 + 7 * US_PER_DAY, "y")[:2] == (1.0, 1.0)
    s.add_label(T0, "x", 0)  # a corrected label overwrites
    assert s.update(T0 + 7 * US_PER_DAY + 1, "z")[:2] == (1.0, 0.0)


def test_state_stays_bounded_and_old_labels_are_refused():
    c, t = CustomerState(), TerminalState()
    for day in range(200):
        for k in range(5):
            time = T0 + day * US_PER_DAY + k * HOUR
            c.update(time, 10.0)
            t.update(time, f"{day}-{k}")
    assert len(c) <= 30 * 5 + 1
    assert len(t) <= 37 * 5 + 1
    assert t.add_label(T0, "0-0", 1) is False  # far older than delay + 30 days


def test_states_survive_pickle_and_bytes():
    c, t = CustomerState(), TerminalState()
    for k in range(50):
        c.update(T0 + k * HOUR, 1.5 * k)
        t.update(T0 + k * HOUR, f"tx{k}")
        t.add_label(T0 + k * HOUR, f"tx{k}", k % 2)
    for restored in (pickle.loads(pickle.dumps(c)), CustomerState.from_bytes(c.to_bytes())):
        assert restored.update(T0 + 60 * HOUR, 7.0) == CustomerState.from_bytes(c.to_bytes()).update(T0 + 60 * HOUR, 7.0)
    blob = pickle.dumps(t, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(blob).update(T0 + 9 * US_PER_DAY, "n") == t.update(T0 + 9 * US_PER_DAY, "n")
    assert len(pickle.dumps(c, protocol=pickle.HIGHEST_PROTOCOL)) < 1_000  # 50 entries: compact


def test_feature_vector_order():
    vec = feature_vector(T0, 12.5, (1.0, 12.5, 2.0, 11.0, 3.0, 10.0), (4.0, 0.25, 5.0, 0.2, 6.0, 0.5))
    assert len(vec) == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, vec))
    assert named["tx_amount"] == 12.5
    assert named["customer_avg_amount_7day"] == 11.0
    assert named["terminal_risk_30day"] == 0.5
