"""Online (incremental) features: one transaction or label at a time, bounded state per key.

A streaming job keeps one `StreamClock` (the newest event time of the stream), one
`CustomerState` per customer key and one `TerminalState` per terminal key (for example in
Flink state). For every record it calls `clock.admit(time)` first, then `update(...)` for a
transaction or `add_label(...)` for a feedback label, and joins the two halves with
`feature_vector(...)`. A record the states cannot take raises `RecordRefused` (a
`ValueError`) whose message names the field, what is wrong and the fix: the job sends it to the
dead-letter topic with that message. The definitions are the ones of `offline.py`; the
semantics of late, repeated, future and early records are in docs/features.md. Pure Python, no
numpy, so a state is cheap to pickle and restore.

Times are integer microseconds since the epoch, UTC (`fraudpipeline.transactions.event_time_us`).
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import reduce
from itertools import accumulate, chain
from math import isfinite
from operator import add as _add

from fraudpipeline.features.definitions import (
    CUSTOMER_WINDOWS_DAYS,
    LABEL_DELAY_DAYS,
    TERMINAL_WINDOWS_DAYS,
    US_PER_DAY,
    US_PER_HOUR,
    time_flags,
)

__all__ = [
    "LATENESS_US",
    "MAX_PENDING_LABELS",
    "MAX_SKEW_US",
    "SUM_IN_ORDER_MAX",
    "US_PER_DAY",
    "US_PER_HOUR",
    "CustomerState",
    "DuplicateTransaction",
    "FutureRecord",
    "LabelOutcome",
    "RecordRefused",
    "StreamClock",
    "TerminalState",
    "feature_vector",
    "time_flags",
    "wall_clock_us",
]

# A record more than this past the stream's newest event (or, for the states, past the wall
# clock) is refused: one bad timestamp must not push the windows forward.
MAX_SKEW_US: int = US_PER_DAY
# A transaction up to this much older than its key's newest one still gets exact features:
# the states keep this much history beyond their longest window.
LATENESS_US: int = US_PER_DAY
# Labels waiting for a transaction the terminal has not seen yet, at most, per terminal.
MAX_PENDING_LABELS: int = 1_000

_CUSTOMER_SPANS = tuple(w * US_PER_DAY for w in CUSTOMER_WINDOWS_DAYS)
_CUSTOMER_WINDOW = max(_CUSTOMER_SPANS)
_CUSTOMER_KEEP = _CUSTOMER_WINDOW + LATENESS_US
_DELAY = LABEL_DELAY_DAYS * US_PER_DAY
_TERMINAL_SPANS = tuple((LABEL_DELAY_DAYS + w) * US_PER_DAY for w in TERMINAL_WINDOWS_DAYS)
_TERMINAL_WINDOW = max(_TERMINAL_SPANS)
_TERMINAL_KEEP = _TERMINAL_WINDOW + LATENESS_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wall_clock_us() -> int:
    """Now, in epoch microseconds (a module function so tests can replace it)."""
    return time.time_ns() // 1_000


def _iso(time_us: int) -> str:
    try:
        return (_EPOCH + timedelta(microseconds=time_us)).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return f"{time_us} us since the epoch"


def _days(us: int) -> str:
    return f"{us / US_PER_DAY:,.2f} days" if us < 1_000 * US_PER_DAY else f"{us / US_PER_DAY:,.0f} days"


# ----------------------------------------------------------------------------- refusals


class RecordRefused(ValueError):
    """A well-formed record the online state will not take; `str(exc)` is the dead-letter reason.

    `field` names the offending field of the record (`timestamp`, `transaction_id`).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self):  # picklable across processes, with its field
        return type(self), (self.field, str(self))


class DuplicateTransaction(RecordRefused):
    """The transaction id is already in the state: counting it again would corrupt the windows."""


class FutureRecord(RecordRefused):
    """The record's time is further ahead than the accepted skew."""


def _future(field: str, time_us: int, reference_us: int, what: str, skew_us: int) -> FutureRecord:
    return FutureRecord(
        field,
        (
            f"field '{field}' is {_iso(time_us)}, {_days(time_us - reference_us)} past {what} "
            f"({_iso(reference_us)}); records more than {_days(skew_us)} ahead are refused so that one wrong "
            f"time cannot push every window forward: fix the producer's clock or the record's {field} "
            f"(RFC 3339 with its UTC offset)"
        ),
    )


def _duplicate(transaction_id: str, seen_at: int, key: str) -> DuplicateTransaction:
    return DuplicateTransaction(
        "transaction_id",
        (
            f"field 'transaction_id' repeats {transaction_id!r}, already counted by this {key} "
            f"(transaction at {_iso(seen_at)}): each transaction is counted once, so a resent record is "
            f"dropped; give a new payment a new transaction_id"
        ),
    )


_SEP = "\x1f"  # ASCII unit separator: joins the ids of a pickled state into one string


def _pack_ids(ids: list[str]) -> str | list[str]:
    # One string pickles and unpickles several times faster than a list of short strings;
    # an id holding the separator (the wire schema allows it) falls back to the list.
    if not ids:
        return ""
    joined = _SEP.join(ids)
    return joined if joined and joined.count(_SEP) == len(ids) - 1 else list(ids)


def _unpack_ids(packed: str | list[str]) -> list[str]:
    if isinstance(packed, str):
        return packed.split(_SEP) if packed else []
    return list(packed)


# The states' own guard, independent of the job's StreamClock: nothing later than the wall clock
# plus the skew gets in, so no record can evict the history of a key being served. The limit
# only grows, so a cached value is safe; it is refreshed only when a time passes it.
_wall_limit_us = 0


def _check_wall_clock(time_us: int, field: str = "timestamp") -> None:
    global _wall_limit_us
    now = wall_clock_us()
    _wall_limit_us = now + MAX_SKEW_US
    if time_us > _wall_limit_us:
        raise _future(field, time_us, now, "the wall clock", MAX_SKEW_US)


class StreamClock:
    """The newest event time of the stream, to refuse records from too far in the future.

    `admit(time_us)` raises `FutureRecord` when `time_us` is more than `max_skew_us` past the
    reference, else advances the newest time. The reference is the newest admitted event plus
    the wall-clock time elapsed since it was admitted (so a stream that pauses for longer than
    the skew is not refused when it resumes; a replay, where event time runs far faster than
    the wall clock, stays held to its newest event); before the first event, the wall clock
    (so a far-future first record is caught too). Older records are always admitted.

    So that a straggler cannot hold the clock back for ever (say the first record after a start
    is two days late and every later one is on time), `recover_after` refusals in a row of
    records that are not ahead of the wall clock re-anchor the clock on the last of them.
    """

    __slots__ = ("max_skew_us", "recover_after", "newest_us", "admitted_at_us", "refused_in_a_row")

    def __init__(self, max_skew_us: int = MAX_SKEW_US, recover_after: int = 1_000) -> None:
        if max_skew_us < 0 or recover_after < 1:
            raise ValueError(f"max_skew_us must be >= 0 and recover_after >= 1 (got {max_skew_us}, {recover_after})")
        self.max_skew_us = int(max_skew_us)
        self.recover_after = int(recover_after)
        self.newest_us: int | None = None  # newest admitted event time
        self.admitted_at_us = 0  # wall clock when newest_us was admitted
        self.refused_in_a_row = 0  # refusals not ahead of the wall clock since the clock last moved

    def reference_us(self) -> int:
        now = wall_clock_us()
        if self.newest_us is None:
            return now
        return self.newest_us + max(0, now - self.admitted_at_us)

    def admit(self, time_us: int, field: str = "timestamp") -> None:
        newest = self.newest_us
        if newest is not None and time_us <= newest:
            return
        now = wall_clock_us()
        reference = now if newest is None else newest + max(0, now - self.admitted_at_us)
        if time_us > reference + self.max_skew_us:
            if newest is not None and time_us <= now + self.max_skew_us:
                self.refused_in_a_row += 1
                if self.refused_in_a_row >= self.recover_after:
                    self.newest_us, self.admitted_at_us, self.refused_in_a_row = time_us, now, 0
                    return
            what = "the wall clock (no event admitted yet)" if newest is None else "the newest event of the stream"
            raise _future(field, time_us, reference, what, self.max_skew_us)
        self.newest_us = time_us
        self.admitted_at_us = now
        self.refused_in_a_row = 0

    def __getstate__(self) -> tuple[int, int, int | None, int, int]:
        return self.max_skew_us, self.recover_after, self.newest_us, self.admitted_at_us, self.refused_in_a_row

    def __setstate__(self, state: tuple[int, int, int | None, int, int]) -> None:
        (self.max_skew_us, self.recover_after, self.newest_us, self.admitted_at_us, self.refused_in_a_row) = state

    def __repr__(self) -> str:
        newest = "none" if self.newest_us is None else _iso(self.newest_us)
        return f"StreamClock(newest={newest}, max_skew_us={self.max_skew_us})"


# --------------------------------------------------------------------- per-key history blocks
#
# A key's history is a sorted sequence of records cut into blocks of about `_BLOCK` records;
# a Fenwick tree over the blocks gives the number of records (and, per state, the fraud count or
# the exact amount total) before any block in O(log blocks). So a window edge costs a bisect
# over the blocks' newest times, a bisect inside one block and a walk up the tree; inserting a
# record (in order or late) moves at most one block's entries; eviction drops whole blocks and
# cuts the first one. Every operation is O(log n + _BLOCK) in the key's n records, amortised
# (a tree is rebuilt, O(n / _BLOCK), only when a block is split or dropped, once per about
# _BLOCK records). A key with at most _BLOCK records has one block: the flat arrays of before.

_BLOCK = 1_024  # records per block; a late record can grow a block to 2 * _BLOCK, then it splits
# Windows with at most this many records add their amounts left to right, as offline.py does, so
# both give the same float to the last bit. A longer window (only a hot card has one: the
# handbook's busiest card has 157 records in 30 days) uses the exact sum of its amounts, rounded
# once (math.fsum's value), from exact integer prefix sums: O(log n) instead of O(n), and within
# offline's own rounding error of its left-to-right sum (see docs/features.md).
SUM_IN_ORDER_MAX: int = 256


def _fw_build(values: list) -> list:
    """A Fenwick tree (1-based, slot 0 unused) over `values`, in O(len)."""
    tree = [0, *values]
    size = len(tree)
    for i in range(1, size):
        j = i + (i & -i)
        if j < size:
            tree[j] += tree[i]
    return tree


def _fw_add(tree: list, block: int, delta) -> None:
    i = block + 1
    size = len(tree)
    while i < size:
        tree[i] += delta
        i += i & -i


def _fw_append(tree: list, value) -> None:
    """Add a slot at the end holding `value`, in O(log n)."""
    i = len(tree)
    low = i - (i & -i)
    j = i - 1
    while j > low:
        value += tree[j]
        j &= j - 1
    tree.append(value)


def _fw_prefix(tree: list, block: int):
    """Sum over the blocks before `block`."""
    total = 0
    while block:
        total += tree[block]
        block &= block - 1
    return total


def _split(flat, size: int) -> list:
    n = len(flat)
    if n <= size:
        return [flat] if n else []
    return [flat[k : k + size] for k in range(0, n, size)]


class _History:
    """Times, ids and one value per record, sorted by time (ties in arrival order), in blocks."""

    __slots__ = ("_bt", "_bv", "_bi", "_bmax", "_fc", "_n", "_where")

    def _load(self, times: array, values, ids: list[str]) -> None:
        n = len(times)
        if n <= _BLOCK:  # one block (or none): the common case, kept cheap
            self._bt, self._bv, self._bi = ([times], [values], [ids]) if n else ([], [], [])
            self._bmax = [times[-1]] if n else []
            self._fc = [0, n] if n else [0]
        else:
            self._bt = _split(times, _BLOCK)
            self._bv = _split(values, _BLOCK)
            self._bi = _split(ids, _BLOCK)
            self._bmax = [block[-1] for block in self._bt]
            self._fc = _fw_build([len(block) for block in self._bt])
        self._n = n
        self._where = None  # id -> time, rebuilt on first use

    def __len__(self) -> int:
        return self._n

    @property
    def newest_us(self) -> int | None:
        return self._bmax[-1] if self._bmax else None

    # Flat copies, for tests and inspection (O(n)): the state itself is held in blocks.
    @property
    def times(self) -> array:
        return array("q", b"".join(block.tobytes() for block in self._bt))

    @property
    def ids(self) -> list[str]:
        return [tid for block in self._bi for tid in block]

    def _times_bytes(self) -> bytes:
        bt = self._bt
        return bt[0].tobytes() if len(bt) == 1 else b"".join(block.tobytes() for block in bt)

    def _index(self) -> dict[str, int]:
        where = self._where
        if where is None:
            bi, bt = self._bi, self._bt
            if len(bt) == 1:
                where = self._where = dict(zip(bi[0], bt[0]))
            else:
                where = self._where = dict(zip(chain.from_iterable(bi), chain.from_iterable(bt)))
        return where

    def contains(self, transaction_id: str) -> bool:
        return str(transaction_id) in self._index()

    def _insert(self, time_us: int, tid: str, value) -> tuple[int, int]:
        """Insert after every record with the same or an earlier time; returns (block, index)."""
        bt, bmax = self._bt, self._bmax
        b = bisect_right(bmax, time_us)
        nb = len(bt)
        self._n += 1
        if b == nb:  # at or after the newest record: the end of the last block, or a new block
            if nb and len(bt[-1]) < _BLOCK:
                b = nb - 1
                block = bt[b]
                i = len(block)
                block.append(time_us)
                self._bi[b].append(tid)
                self._bv[b].append(value)
                bmax[b] = time_us
                _fw_add(self._fc, b, 1)
                self._added(b, i, value)
                return b, i
            bt.append(array("q", (time_us,)))
            self._bi.append([tid])
            self._bv.append(self._values((value,)))
            bmax.append(time_us)
            _fw_append(self._fc, 1)
            self._opened(value)
            return nb, 0
        block = bt[b]
        i = bisect_right(block, time_us)
        block.insert(i, time_us)
        self._bi[b].insert(i, tid)
        self._bv[b].insert(i, value)
        _fw_add(self._fc, b, 1)
        self._added(b, i, value)
        if len(block) > 2 * _BLOCK:
            half = len(block) // 2
            for blocks in (bt, self._bv, self._bi):
                whole = blocks[b]
                blocks[b : b + 1] = [whole[:half], whole[half:]]
            bmax[b : b + 1] = [bt[b][-1], bt[b + 1][-1]]
            self._split_values(b, half)
            self._rebuild()
            if i >= half:
                return b + 1, i - half
        return b, i

    def _evict(self, cutoff: int) -> None:
        # Records at or before `cutoff` are outside every window of any transaction at most
        # LATENESS_US older than the newest one. A transaction older than that is scored against
        # what is left and then dropped here at once: it changes no later feature.
        bt, bi, bv = self._bt, self._bi, self._bv
        where = self._where
        dropped = 0
        while len(bt) > 1 and bt[0][-1] <= cutoff:  # whole blocks (the newest record always stays)
            self._dropping(bv[0], True)
            if where is not None:
                self._forget(where, bi[0])
            dropped += len(bt[0])
            del bt[0], bi[0], bv[0], self._bmax[0]
        k = bisect_right(bt[0], cutoff)
        if k:
            self._dropping(bv[0][:k], False)
            if where is not None:
                self._forget(where, bi[0][:k])
            self._cut_first(k)
            del bt[0][:k], bi[0][:k], bv[0][:k]
        self._n -= dropped + k
        if dropped:
            self._rebuild()
        else:
            _fw_add(self._fc, 0, -k)

    @staticmethod
    def _forget(where, ids: list[str]) -> None:
        for tid in ids:
            del where[tid]

    def _rebuild(self) -> None:
        self._fc = _fw_build([len(block) for block in self._bt])
        self._rebuild_values()

    # What a state keeps besides the counts (hooks).
    def _values(self, values): ...
    def _added(self, b: int, i: int, value) -> None: ...
    def _opened(self, value) -> None: ...
    def _dropping(self, values, whole: bool) -> None: ...
    def _cut_first(self, k: int) -> None: ...
    def _split_values(self, b: int, half: int) -> None: ...
    def _rebuild_values(self) -> None: ...


# ------------------------------------------------------------------------------ customer


class _Finer(Exception):
    """An amount is not a multiple of 2**-k: the exact sums need a finer scale."""


def _scaled(amount: float, k: int) -> int:
    """`amount * 2**k` as an exact integer (raises _Finer if it is not one)."""
    p, q = amount.as_integer_ratio()
    e = q.bit_length() - 1
    if e > k:
        raise _Finer(e)
    return p << (k - e)


class CustomerState(_History):
    """Recent transactions of one customer: times, amounts and ids of the last 30 + 1 days.

    `update` returns (nb_tx_1day, avg_amount_1day, nb_tx_7day, avg_amount_7day, nb_tx_30day,
    avg_amount_30day) over (t - w days, t], the current transaction included.
    """

    # _bp: per block, exact prefix sums of amounts * 2**_k (within a block, the sum of its first
    # i amounts is _bp[b][i] - _bp[b][0]); _fe: Fenwick tree of the blocks' exact totals. Both
    # built when a window first holds more than SUM_IN_ORDER_MAX records, None until then.
    __slots__ = ("_bp", "_fe", "_k", "_scale", "_odd")

    def __init__(self) -> None:
        self._load(array("q"), array("d"), [])
        self._where = set()
        self._bp = self._fe = None
        self._k = 64
        self._scale = 1 << 64
        self._odd = 0  # amounts that are not finite (no exact sum: such a state adds in order)

    # The id index is a set (cheaper to rebuild after unpickling than a dict); the time of a
    # repeated id, for the refusal's message only, is looked up in the blocks.
    def _index(self) -> set[str]:
        where = self._where
        if where is None:
            where = self._where = set(self._bi[0]) if len(self._bi) == 1 else set(chain.from_iterable(self._bi))
        return where

    @staticmethod
    def _forget(where, ids: list[str]) -> None:
        where.difference_update(ids)

    def _time_of(self, tid: str) -> int:
        for times, ids in zip(self._bt, self._bi):
            if tid in ids:
                return times[ids.index(tid)]
        raise KeyError(tid)

    @property
    def amounts(self) -> array:
        return array("d", b"".join(block.tobytes() for block in self._bv))

    def update(self, time_us: int, amount: float, transaction_id: str) -> tuple[float, ...]:
        """Add the transaction and return its 6 customer features.

        Raises `DuplicateTransaction` (state unchanged) if `transaction_id` is in the state, and
        `FutureRecord` if `time_us` is more than a day past the wall clock.
        """
        tid = transaction_id if type(transaction_id) is str else str(transaction_id)
        where = self._where if self._where is not None else self._index()
        if tid in where:
            raise _duplicate(tid, self._time_of(tid), "card")
        if time_us > _wall_limit_us:
            _check_wall_clock(time_us)
        amount = float(amount)
        b, i = self._insert(time_us, tid, amount)
        where.add(tid)
        bt, bv, bmax, fc = self._bt, self._bv, self._bmax, self._fc
        pos = i + _fw_prefix(fc, b)  # the new record's rank
        out: list[float] = []
        for span in _CUSTOMER_SPANS:
            edge = time_us - span
            lb = bisect_right(bmax, edge)  # <= b: the new record is after the edge
            li = bisect_right(bt[lb], edge)
            count = pos + 1 - li - _fw_prefix(fc, lb)
            if count > SUM_IN_ORDER_MAX and (self._bp is not None or self._exact()):
                # The exact sum of the window's amounts, rounded once (as math.fsum).
                bp, fe = self._bp, self._fe
                top, bottom = bp[b], bp[lb]
                exact = (top[i + 1] - top[0] + _fw_prefix(fe, b)) - (bottom[li] - bottom[0] + _fw_prefix(fe, lb))
                total = exact / self._scale
            elif lb == b:
                # Left to right from 0.0, as offline.py adds (bit-identical). Not sum(): Python
                # 3.12's sum() compensates rounding.
                total = reduce(_add, bv[b][li : i + 1], 0.0)
            else:
                total = reduce(_add, bv[lb][li:], 0.0)
                for k in range(lb + 1, b):
                    total = reduce(_add, bv[k], total)
                total = reduce(_add, bv[b][: i + 1], total)
            out.append(float(count))
            out.append(total / count)
        cutoff = bmax[-1] - _CUSTOMER_KEEP
        if bt[0][0] <= cutoff:
            self._evict(cutoff)
        return tuple(out)

    # -- exact sums
    def _exact(self) -> bool:
        """Build the exact prefix sums; False if an amount is not finite."""
        if self._odd:
            return False
        k = self._k
        while True:
            try:
                bp = [list(accumulate((_scaled(a, k) for a in block), initial=0)) for block in self._bv]
            except _Finer as finer:
                k = max(finer.args[0], 2 * k)
                continue
            break
        self._k, self._scale = k, 1 << k
        self._bp = bp
        self._fe = _fw_build([p[-1] - p[0] for p in bp])
        return True

    def _exact_of(self, amount: float) -> int | None:
        if not isfinite(amount):
            self._odd += 1
        elif self._bp is not None:
            try:
                return _scaled(amount, self._k)
            except _Finer:
                pass
        self._bp = self._fe = None  # rebuilt (with a finer scale) when next needed
        return None

    def _values(self, values):
        return array("d", values)

    def _added(self, b: int, i: int, value: float) -> None:
        if self._bp is None and isfinite(value):
            return
        n = self._exact_of(value)
        if n is None:
            return
        p = self._bp[b]
        if i == len(p) - 1:
            p.append(p[-1] + n)
        else:
            p.insert(i + 1, p[i] + n)
            p[i + 2 :] = [v + n for v in p[i + 2 :]]
        _fw_add(self._fe, b, n)

    def _opened(self, value: float) -> None:
        if self._bp is None and isfinite(value):
            return
        n = self._exact_of(value)
        if n is not None:
            self._bp.append([0, n])
            _fw_append(self._fe, n)

    def _dropping(self, values, whole: bool) -> None:
        if self._odd:
            self._odd -= sum(1 for a in values if not isfinite(a))
        if whole and self._bp is not None:
            del self._bp[0]

    def _cut_first(self, k: int) -> None:
        bp = self._bp
        if bp is not None:
            first = bp[0]
            _fw_add(self._fe, 0, first[0] - first[k])
            del first[:k]

    def _split_values(self, b: int, half: int) -> None:
        bp = self._bp
        if bp is not None:
            whole = bp[b]
            bp[b : b + 1] = [whole[: half + 1], whole[half:]]

    def _rebuild_values(self) -> None:
        if self._bp is not None:
            self._fe = _fw_build([p[-1] - p[0] for p in self._bp])

    def expired(self, now_us: int) -> bool:
        """True when no entry can affect a feature of a transaction at or after `now_us`."""
        return not self._n or self._bmax[-1] <= now_us - _CUSTOMER_WINDOW

    # Compact pickling, the format of the flat arrays before (so old snapshots load, both ways):
    # two machine arrays as bytes and the ids as one string. The blocks, the id index and the
    # exact sums are rebuilt from them.
    def __getstate__(self) -> tuple[bytes, bytes, str | list[str]]:
        bv = self._bv
        amounts = bv[0].tobytes() if len(bv) == 1 else b"".join(block.tobytes() for block in bv)
        return self._times_bytes(), amounts, _pack_ids(self._bi[0] if len(self._bi) == 1 else self.ids)

    def __setstate__(self, state: tuple[bytes, bytes, str | list[str]]) -> None:
        times = array("q")
        times.frombytes(state[0])
        amounts = array("d")
        amounts.frombytes(state[1])
        self._restore(times, amounts, _unpack_ids(state[2]))

    def _restore(self, times: array, amounts: array, ids: list[str]) -> None:
        self._load(times, amounts, ids)
        self._bp = self._fe = None
        self._k = 64
        self._scale = 1 << 64
        # (A finite total means every amount is finite: the scan is only for the rare other case.)
        self._odd = 0 if isfinite(sum(amounts)) else sum(1 for a in amounts if not isfinite(a))

    def to_bytes(self) -> bytes:
        """Self-contained binary form (for a byte-array state): count, times, amounts, ids."""
        times, amounts, _ = self.__getstate__()
        encoded = [i.encode() for i in self.ids]
        lengths = array("I", map(len, encoded))
        return b"".join((self._n.to_bytes(4, "little"), times, amounts, lengths.tobytes(), *encoded))

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        n = int.from_bytes(data[:4], "little")
        at = 4
        times = array("q")
        times.frombytes(data[at : at + 8 * n])
        at += 8 * n
        amounts = array("d")
        amounts.frombytes(data[at : at + 8 * n])
        at += 8 * n
        lengths = array("I")
        lengths.frombytes(data[at : at + 4 * n])
        at += 4 * n
        ids = []
        for length in lengths:
            ids.append(data[at : at + length].decode())
            at += length
        state = cls.__new__(cls)
        state._restore(times, amounts, ids)
        return state


# ------------------------------------------------------------------------------ terminal


class LabelOutcome(StrEnum):
    """What `TerminalState.add_label` did with a label (for the job's counters)."""

    APPLIED = "applied"  # the terminal has the transaction: its label is set (a repeat overwrites)
    PENDING = "pending"  # not seen yet: the label waits for its transaction (bounded, see docs)
    TOO_OLD = "too-old"  # older than any window can still use: ignored
    DROPPED = "dropped"  # MAX_PENDING_LABELS labels already wait at this terminal: ignored


class TerminalState(_History):
    """Recent transactions of one terminal and their labels: the last delay + 30 + 1 days.

    `update` returns (nb_tx_1day, risk_1day, nb_tx_7day, risk_7day, nb_tx_30day, risk_30day)
    over (t - delay - w days, t - delay], then records the transaction. The risk is the share
    of those transactions labelled fraud by the time of the call (unlabelled ones count as
    genuine, since feedback streams often carry only frauds); 0 for an empty window.
    `add_label` records feedback; a label for a transaction not seen yet waits in `pending`
    and never counts as a transaction.
    """

    # Values: one byte per record, 1 fraud, 0 genuine or not labelled yet; _ff: Fenwick tree of
    # the blocks' fraud counts (exact integers, so the risks are those of offline.py to the bit).
    __slots__ = ("_ff", "pending", "_pending_oldest")

    def __init__(self) -> None:
        self._load(array("q"), bytearray(), [])
        self._where = {}
        self._ff = [0]
        self.pending: dict[str, tuple[int, int]] | None = None  # id -> (transaction time, fraud)
        self._pending_oldest = 0  # smallest time in `pending` (valid when it is not empty)

    @property
    def frauds(self) -> array:
        return array("b", b"".join(self._bv))

    @property
    def pending_labels(self) -> int:
        return len(self.pending) if self.pending else 0

    def contains(self, transaction_id: str) -> bool:
        """True if the transaction is recorded (a pending label does not count)."""
        return str(transaction_id) in self._index()

    def update(self, time_us: int, transaction_id: str) -> tuple[float, ...]:
        """The 6 terminal features from the labels known now, then record the transaction.

        Raises `DuplicateTransaction` (state unchanged) if `transaction_id` is recorded, and
        `FutureRecord` if `time_us` is more than a day past the wall clock.
        """
        tid = transaction_id if type(transaction_id) is str else str(transaction_id)
        where = self._where if self._where is not None else self._index()
        if tid in where:
            raise _duplicate(tid, where[tid], "terminal")
        if time_us > _wall_limit_us:
            _check_wall_clock(time_us)
        bt, bv, bmax, fc, ff = self._bt, self._bv, self._bmax, self._fc, self._ff
        nb = len(bt)
        edge = time_us - _DELAY
        hb = bisect_right(bmax, edge)
        hi = hf = 0
        if hb < nb:
            hi = bisect_right(bt[hb], edge)
            hf = bv[hb].count(1, 0, hi)
        j = hb
        while j:
            hi += fc[j]
            hf += ff[j]
            j &= j - 1
        out: list[float] = []
        for span in _TERMINAL_SPANS:
            edge = time_us - span
            lb = bisect_right(bmax, edge, 0, hb)
            lo = lf = 0
            if lb < nb:
                lo = bisect_right(bt[lb], edge)
                lf = bv[lb].count(1, 0, lo)
            j = lb
            while j:
                lo += fc[j]
                lf += ff[j]
                j &= j - 1
            count = hi - lo
            out.append(float(count))
            out.append((hf - lf) / count if count else 0.0)
        fraud = 0
        pending = self.pending
        if pending and tid in pending:  # its label came first: merge it
            fraud = pending.pop(tid)[1]
        self._insert(time_us, tid, fraud)
        where[tid] = time_us
        cutoff = bmax[-1] - _TERMINAL_KEEP
        if bt[0][0] <= cutoff:
            self._evict(cutoff)
        if pending and self._pending_oldest <= cutoff:
            self._expire_pending(cutoff)
        return tuple(out)

    def add_label(self, time_us: int, transaction_id: str, fraud: int) -> LabelOutcome:
        """Record feedback for a transaction of this terminal; returns what was done.

        `time_us` is the transaction's own time (the label record carries it); the label is
        matched by `transaction_id`. Raises `FutureRecord` if `time_us` is more than a day past
        the wall clock.
        """
        tid = transaction_id if type(transaction_id) is str else str(transaction_id)
        value = 1 if fraud else 0
        if time_us > _wall_limit_us:
            _check_wall_clock(time_us)
        where = self._where if self._where is not None else self._index()
        at = where.get(tid)
        if at is not None:
            b = bisect_left(self._bmax, at)
            i = bisect_left(self._bt[b], at)
            bi = self._bi
            while bi[b][i] != tid:  # same-time records: in arrival order, maybe in the next block
                i += 1
                if i == len(bi[b]):
                    b, i = b + 1, 0
            block = self._bv[b]
            old = block[i]
            if old != value:
                block[i] = value
                _fw_add(self._ff, b, value - old)
            return LabelOutcome.APPLIED
        if self._n and time_us <= self._bmax[-1] - _TERMINAL_KEEP:
            return LabelOutcome.TOO_OLD
        pending = self.pending
        if pending is None:
            pending = self.pending = {}
        if tid not in pending and len(pending) >= MAX_PENDING_LABELS:
            return LabelOutcome.DROPPED
        if not pending or time_us < self._pending_oldest:
            self._pending_oldest = time_us
        pending[tid] = (time_us, value)
        return LabelOutcome.PENDING

    def _values(self, values):
        return bytearray(values)

    def _added(self, b: int, i: int, value: int) -> None:
        if value:
            _fw_add(self._ff, b, 1)

    def _opened(self, value: int) -> None:
        _fw_append(self._ff, value)

    def _dropping(self, values, whole: bool) -> None:
        pass

    def _cut_first(self, k: int) -> None:
        frauds = self._bv[0].count(1, 0, k)
        if frauds:
            _fw_add(self._ff, 0, -frauds)

    def _split_values(self, b: int, half: int) -> None:
        pass

    def _rebuild_values(self) -> None:
        self._ff = _fw_build([block.count(1) for block in self._bv])

    def _expire_pending(self, cutoff: int) -> None:
        # A waiting label whose transaction would be evicted on arrival can never count.
        kept = {tid: v for tid, v in self.pending.items() if v[0] > cutoff}
        self.pending = kept or None
        if kept:
            self._pending_oldest = min(v[0] for v in kept.values())

    def expired(self, now_us: int) -> bool:
        """True when nothing here (pending labels included) can affect a transaction at or after `now_us`."""
        horizon = now_us - _TERMINAL_WINDOW
        if self._n and self._bmax[-1] > horizon:
            return False
        return not self.pending or max(v[0] for v in self.pending.values()) <= horizon

    # The format of the flat arrays before (old snapshots load, both ways).
    def __getstate__(self) -> tuple[bytes, bytes, str | list[str], dict[str, tuple[int, int]] | None]:
        bv = self._bv
        frauds = bytes(bv[0]) if len(bv) == 1 else b"".join(bv)
        return (
            self._times_bytes(),
            frauds,
            _pack_ids(self._bi[0] if len(self._bi) == 1 else self.ids),
            self.pending or None,
        )

    def __setstate__(self, state: tuple) -> None:
        times = array("q")
        times.frombytes(state[0])
        self._load(times, bytearray(state[1]), _unpack_ids(state[2]))
        self._ff = _fw_build([block.count(1) for block in self._bv])
        pending = state[3] if len(state) > 3 else None
        self.pending = dict(pending) if pending else None
        self._pending_oldest = min(v[0] for v in self.pending.values()) if self.pending else 0


def feature_vector(time_us: int, amount: float, customer: Sequence[float], terminal: Sequence[float]) -> list[float]:
    """The 15 features in `FEATURE_NAMES` order from the two per-key halves."""
    weekend, night = time_flags(time_us)
    return [float(amount), weekend, night, *customer, *terminal]
