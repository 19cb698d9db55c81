"""Hot keys (issue 24, item 5): the online states in blocks, at a cost logarithmic in a key's history.

- A model test (Hypothesis) runs random streams through `CustomerState` / `TerminalState` with
  tiny blocks (4 records, so that blocks are opened, split, cut and dropped all the time) and a
  tiny in-order limit (3 records), and through the flat reference below (the implementation
  before the blocks, O(n) per call): every feature, the ids, the pending labels, `expired` and
  the pickled form must be identical, through pickle round trips at random points. The
  reference adds a window's amounts left to right when it holds at most `SUM_IN_ORDER_MAX`
  records (offline.py's order, to the bit) and takes `math.fsum` beyond, unless an amount held
  is not finite.
- Snapshots pickled by the implementation before the blocks (frozen below) restore, give the
  features that implementation gave, and pickle back to the same bytes.
- The cost of a call grows like log n: at 200,000 records in the window at most 3 times that
  at 20,000 (it was 10 times, O(n)).
"""

from __future__ import annotations

import base64
import pickle
from array import array
from bisect import bisect_right
from itertools import accumulate
from math import fsum, inf, isfinite

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudpipeline.features import online
from fraudpipeline.features.online import (
    US_PER_DAY,
    CustomerState,
    DuplicateTransaction,
    LabelOutcome,
    TerminalState,
)

HOUR = 3_600_000_000
T0 = 1_532_520_000_000_000  # 2018-07-25T12:00:00Z
C_SPANS = [w * US_PER_DAY for w in (1, 7, 30)]
C_KEEP = 31 * US_PER_DAY
T_DELAY = 7 * US_PER_DAY
T_SPANS = [(7 + w) * US_PER_DAY for w in (1, 7, 30)]
T_KEEP = 38 * US_PER_DAY


def _in_order(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


class FlatCustomer:
    """The card state as it was (flat sorted lists), with the documented rule for long windows."""

    def __init__(self, small: int) -> None:
        self.small = small
        self.times: list[int] = []
        self.amounts: list[float] = []
        self.ids: list[str] = []

    def update(self, t: int, amount: float, tid: str):
        if tid in self.ids:
            return "duplicate"
        pos = bisect_right(self.times, t)
        self.times.insert(pos, t)
        self.amounts.insert(pos, amount)
        self.ids.insert(pos, tid)
        exact = all(isfinite(a) for a in self.amounts)
        out = []
        for span in C_SPANS:
            lo = bisect_right(self.times, t - span, 0, pos)
            window = self.amounts[lo : pos + 1]
            total = fsum(window) if len(window) > self.small and exact else _in_order(window)
            out += [float(len(window)), total / len(window)]
        drop = bisect_right(self.times, self.times[-1] - C_KEEP)
        del self.times[:drop], self.amounts[:drop], self.ids[:drop]
        return tuple(out)

    def state(self):
        return array("q", self.times).tobytes(), array("d", self.amounts).tobytes(), online._pack_ids(self.ids)

    def expired(self, now: int) -> bool:
        return not self.times or self.times[-1] <= now - 30 * US_PER_DAY


class FlatTerminal:
    """The terminal state as it was (flat sorted lists, pending labels)."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.frauds: list[int] = []
        self.ids: list[str] = []
        self.pending: dict[str, tuple[int, int]] = {}

    def update(self, t: int, tid: str):
        if tid in self.ids:
            return "duplicate"
        hi = bisect_right(self.times, t - T_DELAY)
        out = []
        for span in T_SPANS:
            lo = bisect_right(self.times, t - span, 0, hi)
            count = hi - lo
            out += [float(count), sum(self.frauds[lo:hi]) / count if count else 0.0]
        fraud = self.pending.pop(tid)[1] if tid in self.pending else 0
        pos = bisect_right(self.times, t)
        self.times.insert(pos, t)
        self.frauds.insert(pos, fraud)
        self.ids.insert(pos, tid)
        cutoff = self.times[-1] - T_KEEP
        drop = bisect_right(self.times, cutoff)
        del self.times[:drop], self.frauds[:drop], self.ids[:drop]
        self.pending = {k: v for k, v in self.pending.items() if v[0] > cutoff}
        return tuple(out)

    def add_label(self, t: int, tid: str, fraud: int) -> str:
        if tid in self.ids:
            self.frauds[self.ids.index(tid)] = fraud
            return "applied"
        if self.times and t <= self.times[-1] - T_KEEP:
            return "too-old"
        if tid not in self.pending and len(self.pending) >= online.MAX_PENDING_LABELS:
            return "dropped"
        self.pending[tid] = (t, fraud)
        return "pending"

    def state(self):
        return (
            array("q", self.times).tobytes(),
            bytes(self.frauds),
            online._pack_ids(self.ids),
            dict(self.pending) or None,
        )

    def expired(self, now: int) -> bool:
        horizon = now - 37 * US_PER_DAY
        if self.times and self.times[-1] > horizon:
            return False
        return not self.pending or max(v[0] for v in self.pending.values()) <= horizon


GAPS = st.one_of(
    st.sampled_from([0, 0, 1, HOUR, US_PER_DAY, 7 * US_PER_DAY, 7 * US_PER_DAY + 1, 30 * US_PER_DAY, 38 * US_PER_DAY]),
    st.integers(0, 6 * HOUR),
    st.integers(0, 3 * US_PER_DAY),
)
AMOUNTS = st.one_of(
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 0.01, 57.16, 1e-300, 5e-324, 3.4e38]),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(lambda a: round(a, 2)),
)


@st.composite
def operations(draw) -> list[tuple]:
    ops: list[tuple] = []
    now = T0
    n = draw(st.integers(1, 120))
    for i in range(n):
        now += draw(GAPS)
        late = draw(st.sampled_from([0, 0, 0, 0, 1, HOUR, US_PER_DAY, 2 * US_PER_DAY]))
        amount = inf if draw(st.integers(0, 60)) == 0 else draw(AMOUNTS)
        ops.append(("tx", now - late, amount, f"t{i}"))
        if draw(st.integers(0, 3)) == 0:  # a label, for a transaction seen or still to come
            ops.append(("label", draw(st.integers(0, n - 1)), draw(st.integers(0, 1))))
        if draw(st.integers(0, 12)) == 0:  # a repeat of an earlier id, at another time maybe
            ops.append(("tx", now - draw(st.sampled_from([0, HOUR])), 1.0, f"t{draw(st.integers(0, i))}"))
        if draw(st.integers(0, 15)) == 0:
            ops.append(("pickle",))
    return ops


def _check_blocks(state) -> None:
    """The block structure's own invariants: sorted non-empty blocks, trees equal to a rebuild."""
    bt, bv, bi = state._bt, state._bv, state._bi
    assert all(bt) and [len(b) for b in bt] == [len(b) for b in bv] == [len(b) for b in bi]
    assert state._bmax == [b[-1] for b in bt] and list(state.times) == sorted(state.times)
    assert state._fc == online._fw_build([len(b) for b in bt]) and state._n == sum(map(len, bt))
    if isinstance(state, TerminalState):
        assert state._ff == online._fw_build([b.count(1) for b in bv])
    elif state._bp is not None:
        k = state._k
        assert [[q - p[0] for q in p] for p in state._bp] == [
            [0, *accumulate(online._scaled(a, k) for a in b)] for b in bv
        ]
        assert state._fe == online._fw_build([p[-1] - p[0] for p in state._bp])


def _run(ops: list[tuple], seen: dict) -> None:
    small = online.SUM_IN_ORDER_MAX
    c, t = CustomerState(), TerminalState()
    rc, rt = FlatCustomer(small), FlatTerminal()
    times: dict[str, int] = {}  # first time of each id, for labels
    for op in ops:
        if op[0] == "pickle":
            c, t = pickle.loads(pickle.dumps(c)), pickle.loads(pickle.dumps(t))
            c = CustomerState.from_bytes(c.to_bytes()) if len(c) % 2 else c
            seen["pickled"] = seen.get("pickled", 0) + 1
        elif op[0] == "label":
            tid = f"t{op[1]}"
            when = times.get(tid, T0 + op[1] * HOUR)
            got = t.add_label(when, tid, op[2])
            assert got == LabelOutcome(rt.add_label(when, tid, op[2])), op
            seen[f"label {got}"] = seen.get(f"label {got}", 0) + 1
        else:
            _, when, amount, tid = op
            times.setdefault(tid, when)
            expected = rc.update(when, amount, tid)
            if expected == "duplicate":
                with pytest.raises(DuplicateTransaction):
                    c.update(when, amount, tid)
                seen["repeat"] = seen.get("repeat", 0) + 1
            else:
                assert c.update(when, amount, tid) == expected, op
                if expected[5] != expected[5] or expected[4] > small:
                    seen["long card window"] = seen.get("long card window", 0) + 1
            expected = rt.update(when, tid)
            if expected == "duplicate":
                with pytest.raises(DuplicateTransaction):
                    t.update(when, tid)
            else:
                assert t.update(when, tid) == expected, op
                if any(expected[1::2]):
                    seen["terminal risk > 0"] = seen.get("terminal risk > 0", 0) + 1
        assert c.__getstate__() == rc.state() and t.__getstate__() == rt.state()
        _check_blocks(c)
        _check_blocks(t)
        assert len(c) == len(rc.ids) and len(t) == len(rt.ids) and t.pending_labels == len(rt.pending)
        seen["blocks"] = max(seen.get("blocks", 0), len(c._bt), len(t._bt))
    for now in (rt.times[-1] if rt.times else T0, T0 + 200 * US_PER_DAY):
        assert c.expired(now) == rc.expired(now) and t.expired(now) == rt.expired(now)
    assert all(c.contains(i) for i in rc.ids) and all(t.contains(i) for i in rt.ids)


def test_blocks_equal_the_flat_states_on_random_streams(monkeypatch):
    monkeypatch.setattr(online, "wall_clock_us", lambda: T0 + 10_000 * US_PER_DAY)
    monkeypatch.setattr(online, "_wall_limit_us", 0)
    monkeypatch.setattr(online, "_BLOCK", 4)
    monkeypatch.setattr(online, "SUM_IN_ORDER_MAX", 3)
    seen: dict = {}

    @settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(operations())
    def check(ops):
        _run(ops, seen)

    check()
    print("\nblock model test, what the examples exercised:", dict(sorted(seen.items())))
    for case in ("pickled", "label applied", "label pending", "repeat", "long card window", "terminal risk > 0"):
        assert seen.get(case), (case, seen)
    assert seen["blocks"] >= 8


def test_long_windows_sum_exactly_and_fall_back_in_order_when_an_amount_is_not_finite(monkeypatch):
    monkeypatch.setattr(online, "SUM_IN_ORDER_MAX", 3)
    monkeypatch.setattr(online, "_BLOCK", 4)
    c = CustomerState()
    amounts = [0.1, 0.2, 0.3, 1e16, 1.0, -1e16, 0.7]  # left to right loses the 1.0 and more
    for k, a in enumerate(amounts):
        out = c.update(T0 + k, a, f"a{k}")
    assert out[1] == fsum(amounts) / 7 != _in_order(amounts) / 7
    out = c.update(T0 + 10, 5e-324, "tiny")  # needs a finer scale than the one in use: rebuilt
    assert out[1] == fsum([*amounts, 5e-324]) / 8
    out = c.update(T0 + 11, inf, "inf")
    assert out[1] == inf
    # The infinite amount leaves the state (31 days on): exact sums again.
    later = [T0 + 31 * US_PER_DAY + 12 + k for k in range(5)]
    for k, when in enumerate(later):
        out = c.update(when, [0.1, 1e16, 1.0, -1e16, 0.2][k], f"b{k}")
    assert c._odd == 0 and out[5] == fsum([0.1, 1e16, 1.0, -1e16, 0.2]) / 5


# Pickled by the implementation before the blocks (commit 818425e's online.py): 12 transactions
# 20 hours apart from T0, amounts 10 + 0.37 k, labels fraud on every third, one label waiting.
OLD_CUSTOMER = (
    "gAWVMwEAAAAAAACMHWZyYXVkcGlwZWxpbmUuZmVhdHVyZXMub25saW5llIwNQ3VzdG9tZXJTdGF0ZZSTlCmBlENgABA2ntFxBQAA4L5h4nEFAACwRyXz"
    "cQUAAIDQ6ANyBQAAUFmsFHIFAAAg4m8lcgUAAPBqMzZyBQAAwPP2RnIFAACQfLpXcgUAAGAFfmhyBQAAMI5BeXIFAAAAFwWKcgUAlENgAAAAAAAAJEA9"
    "CtejcL0kQHsUrkfheiVAuB6F61E4JkD2KFyPwvUmQDMzMzMzsydAcD0K16NwKECuR+F6FC4pQOxRuB6F6ylAKVyPwvWoKkBmZmZmZmYrQKRwPQrXIyxA"
    "lIwxdHgwH3R4MR90eDIfdHgzH3R4NB90eDUfdHg2H3R4Nx90eDgfdHg5H3R4MTAfdHgxMZSHlGIu"
)
OLD_TERMINAL = (
    "gAWV+gAAAAAAAACMHWZyYXVkcGlwZWxpbmUuZmVhdHVyZXMub25saW5llIwNVGVybWluYWxTdGF0ZZSTlCmBlChDYAAQNp7RcQUAAOC+YeJxBQAAsEcl"
    "83EFAACA0OgDcgUAAFBZrBRyBQAAIOJvJXIFAADwajM2cgUAAMDz9kZyBQAAkHy6V3IFAABgBX5ocgUAADCOQXlyBQAAABcFinIFAJRDDAEAAAEAAAEA"
    "AAEAAJSMMXR4MB90eDEfdHgyH3R4Mx90eDQfdHg1H3R4Nh90eDcfdHg4H3R4OR90eDEwH3R4MTGUfZSMB3dhaXRpbmeUigcAQDoTzXIFSwGGlHN0lGIu"
)


@pytest.mark.parametrize("block", [1_024, 4])
def test_snapshots_of_the_flat_states_restore_and_pickle_back_the_same(monkeypatch, block):
    monkeypatch.setattr(online, "_wall_limit_us", 1 << 62)
    monkeypatch.setattr(online, "_BLOCK", block)
    old_c, old_t = base64.b64decode(OLD_CUSTOMER), base64.b64decode(OLD_TERMINAL)
    c, t = pickle.loads(old_c), pickle.loads(old_t)
    assert len(c._bt) == (1 if block > 12 else 3) and len(c) == 12 and t.pending_labels == 1
    assert pickle.dumps(c, protocol=5) == old_c and pickle.dumps(t, protocol=5) == old_t
    # What the flat implementation returned for the same calls on the same snapshots.
    assert c.update(T0 + 240 * HOUR, 5.5, "next") == (2.0, 9.785, 9.0, 11.966666666666669, 13.0, 11.532307692307691)
    assert t.update(T0 + 240 * HOUR, "next") == (1.0, 1.0, 4.0, 0.5, 4.0, 0.5)
    assert t.update(T0 + 300 * HOUR, "waiting") == (1.0, 1.0, 7.0, 0.42857142857142855, 7.0, 0.42857142857142855)


def test_cost_per_call_grows_like_log_n():
    """Per-call cost at 200,000 records within 3x of that at 20,000 (an O(n) state: 10x)."""
    from fp_devtools.bench.features import hot_key

    best: dict[tuple[str, int], float] = {}
    for _ in range(3):  # interleaved, best median of three: robust to other work on the machine
        for kind in ("terminal", "customer"):
            for n in (20_000, 200_000):
                row = hot_key(kind, n, calls=3_000, batch=100)
                cost = row["update_us"] + row.get("add_label_us", 0.0)
                best[kind, n] = min(best.get((kind, n), inf), cost)
    print("\nper call (us), best of 3 medians:", {f"{k} {n:,}": v for (k, n), v in best.items()})
    for kind in ("terminal", "customer"):
        assert best[kind, 200_000] <= 3 * best[kind, 20_000], (kind, best)


def test_labels_find_their_transaction_among_same_time_records_across_blocks(monkeypatch):
    monkeypatch.setattr(online, "_BLOCK", 4)
    t, ref = TerminalState(), FlatTerminal()
    for k in range(11):  # 11 records at one instant: three blocks
        assert t.update(T0, f"s{k}") == ref.update(T0, f"s{k}")
    assert len(t._bt) == 3
    for k in (9, 0, 4, 10):
        assert t.add_label(T0, f"s{k}", 1) == LabelOutcome.APPLIED == ref.add_label(T0, f"s{k}", 1)
    assert t.frauds.tolist() == ref.frauds
    assert t.update(T0 + 7 * US_PER_DAY, "x") == ref.update(T0 + 7 * US_PER_DAY, "x") == (11.0, 4 / 11) * 3
