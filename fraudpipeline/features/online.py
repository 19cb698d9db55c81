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


# ------------------------------------------------------------------------------ customer


class CustomerState:
    """Recent transactions of one customer: times, amounts and ids of the last 30 + 1 days.

    `update` returns (nb_tx_1day, avg_amount_1day, nb_tx_7day, avg_amount_7day, nb_tx_30day,
    avg_amount_30day) over (t - w days, t], the current transaction included.
    """

    __slots__ = ("times", "amounts", "ids", "_seen")

    def __init__(self) -> None:
        self.times: array = array("q")  # sorted event times (us); ties in arrival order
        self.amounts: array = array("d")
        self.ids: list[str] = []  # transaction ids, to refuse repeats
        self._seen: set[str] | None = set()  # ids as a set; rebuilt on first use after unpickling

    def __len__(self) -> int:
        return len(self.times)

    @property
    def newest_us(self) -> int | None:
        return self.times[-1] if self.times else None

    def _index(self) -> set[str]:
        seen = self._seen
        if seen is None:
            seen = self._seen = set(self.ids)
        return seen

    def contains(self, transaction_id: str) -> bool:
        return str(transaction_id) in self._index()

    def update(self, time_us: int, amount: float, transaction_id: str) -> tuple[float, ...]:
        """Add the transaction and return its 6 customer features.

        Raises `DuplicateTransaction` (state unchanged) if `transaction_id` is in the state, and
        `FutureRecord` if `time_us` is more than a day past the wall clock.
        """
        tid = transaction_id if type(transaction_id) is str else str(transaction_id)
        seen = self._seen if self._seen is not None else self._index()
        if tid in seen:
            raise _duplicate(tid, self.times[self.ids.index(tid)], "card")
        if time_us > _wall_limit_us:
            _check_wall_clock(time_us)
        times, amounts = self.times, self.amounts
        # Insert after every entry with the same or an earlier time: ties keep arrival order.
        pos = bisect_right(times, time_us)
        times.insert(pos, time_us)
        amounts.insert(pos, float(amount))
        self.ids.insert(pos, tid)
        seen.add(tid)
        out: list[float] = []
        for span in _CUSTOMER_SPANS:
            lo = bisect_right(times, time_us - span, 0, pos)
            count = pos + 1 - lo
            # An explicit left-to-right loop, not sum(): Python 3.12's sum() compensates
            # rounding, and the offline code adds in exactly this order (bit-identical).
            total = 0.0
            for i in range(lo, pos + 1):
                total += amounts[i]
            out.append(float(count))
            out.append(total / count)
        cutoff = times[-1] - _CUSTOMER_KEEP
        if times[0] <= cutoff:
            self._evict(cutoff)
        return tuple(out)

    def _evict(self, cutoff: int) -> None:
        # Entries at or before `cutoff` are outside every window of any transaction at most
        # LATENESS_US older than the newest one. A transaction older than that is scored against
        # what is left and then dropped here at once: it changes no later feature.
        drop = bisect_right(self.times, cutoff)
        if drop:
            del self.times[:drop]
            del self.amounts[:drop]
            if self._seen is not None:
                self._seen.difference_update(self.ids[:drop])
            del self.ids[:drop]

    def expired(self, now_us: int) -> bool:
        """True when no entry can affect a feature of a transaction at or after `now_us`."""
        return not self.times or self.times[-1] <= now_us - _CUSTOMER_WINDOW

    # Compact pickling: two machine arrays as bytes and the ids as one string.
    def __getstate__(self) -> tuple[bytes, bytes, str | list[str]]:
        return self.times.tobytes(), self.amounts.tobytes(), _pack_ids(self.ids)

    def __setstate__(self, state: tuple[bytes, bytes, str | list[str]]) -> None:
        self.times = array("q")
        self.times.frombytes(state[0])
        self.amounts = array("d")
        self.amounts.frombytes(state[1])
        self.ids = _unpack_ids(state[2])
        self._seen = None

    def to_bytes(self) -> bytes:
        """Self-contained binary form (for a byte-array state): count, times, amounts, ids."""
        n = len(self.times)
        encoded = [i.encode() for i in self.ids]
        lengths = array("I", map(len, encoded))
        return b"".join(
            (n.to_bytes(4, "little"), self.times.tobytes(), self.amounts.tobytes(), lengths.tobytes(), *encoded)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        n = int.from_bytes(data[:4], "little")
        state = cls()
        at = 4
        state.times.frombytes(data[at : at + 8 * n])
        at += 8 * n
        state.amounts.frombytes(data[at : at + 8 * n])
        at += 8 * n
        lengths = array("I")
        lengths.frombytes(data[at : at + 4 * n])
        at += 4 * n
        ids = []
        for length in lengths:
            ids.append(data[at : at + length].decode())
            at += length
        state.ids = ids
        state._seen = None
        return state


# ------------------------------------------------------------------------------ terminal


class LabelOutcome(StrEnum):
    """What `TerminalState.add_label` did with a label (for the job's counters)."""

    APPLIED = "applied"  # the terminal has the transaction: its label is set (a repeat overwrites)
    PENDING = "pending"  # not seen yet: the label waits for its transaction (bounded, see docs)
    TOO_OLD = "too-old"  # older than any window can still use: ignored
    DROPPED = "dropped"  # MAX_PENDING_LABELS labels already wait at this terminal: ignored


class TerminalState:
    """Recent transactions of one terminal and their labels: the last delay + 30 + 1 days.

    `update` returns (nb_tx_1day, risk_1day, nb_tx_7day, risk_7day, nb_tx_30day, risk_30day)
    over (t - delay - w days, t - delay], then records the transaction. The risk is the share
    of those transactions labelled fraud by the time of the call (unlabelled ones count as
    genuine, since feedback streams often carry only frauds); 0 for an empty window.
    `add_label` records feedback; a label for a transaction not seen yet waits in `pending`
    and never counts as a transaction.
    """

    __slots__ = ("times", "frauds", "ids", "pending", "_pending_oldest", "_where")

    def __init__(self) -> None:
        self.times: array = array("q")  # sorted event times (us)
        self.frauds: array = array("b")  # 1 fraud, 0 genuine or not labelled yet
        self.ids: list[str] = []  # transaction ids, to attach labels and refuse repeats
        self.pending: dict[str, tuple[int, int]] | None = None  # id -> (transaction time, fraud)
        self._pending_oldest = 0  # smallest time in `pending` (valid when it is not empty)
        self._where: dict[str, int] | None = {}  # id -> time; rebuilt on first use after unpickling

    def __len__(self) -> int:
        return len(self.times)

    @property
    def newest_us(self) -> int | None:
        return self.times[-1] if self.times else None

    @property
    def pending_labels(self) -> int:
        return len(self.pending) if self.pending else 0

    def _index(self) -> dict[str, int]:
        where = self._where
        if where is None:
            where = self._where = dict(zip(self.ids, self.times))
        return where

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
        times, frauds = self.times, self.frauds
        hi = bisect_right(times, time_us - _DELAY)
        out: list[float] = []
        for span in _TERMINAL_SPANS:
            lo = bisect_right(times, time_us - span, 0, hi)
            count = hi - lo
            out.append(float(count))
            out.append(sum(frauds[lo:hi]) / count if count else 0.0)
        fraud = 0
        pending = self.pending
        if pending and tid in pending:  # its label came first: merge it
            fraud = pending.pop(tid)[1]
        pos = bisect_right(times, time_us)
        times.insert(pos, time_us)
        frauds.insert(pos, fraud)
        self.ids.insert(pos, tid)
        where[tid] = time_us
        cutoff = times[-1] - _TERMINAL_KEEP
        if times[0] <= cutoff:
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
            i = bisect_left(self.times, at)
            while self.ids[i] != tid:
                i += 1
            self.frauds[i] = value
            return LabelOutcome.APPLIED
        if self.times and time_us <= self.times[-1] - _TERMINAL_KEEP:
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

    def _evict(self, cutoff: int) -> None:
        # As for customers: entries at or before `cutoff` can matter to no transaction at most
        # LATENESS_US older than the newest one.
        drop = bisect_right(self.times, cutoff)
        if drop:
            del self.times[:drop]
            del self.frauds[:drop]
            where = self._where
            if where is not None:
                for tid in self.ids[:drop]:
                    del where[tid]
            del self.ids[:drop]

    def _expire_pending(self, cutoff: int) -> None:
        # A waiting label whose transaction would be evicted on arrival can never count.
        kept = {tid: v for tid, v in self.pending.items() if v[0] > cutoff}
        self.pending = kept or None
        if kept:
            self._pending_oldest = min(v[0] for v in kept.values())

    def expired(self, now_us: int) -> bool:
        """True when nothing here (pending labels included) can affect a transaction at or after `now_us`."""
        horizon = now_us - _TERMINAL_WINDOW
        if self.times and self.times[-1] > horizon:
            return False
        return not self.pending or max(v[0] for v in self.pending.values()) <= horizon

    def __getstate__(self) -> tuple[bytes, bytes, str | list[str], dict[str, tuple[int, int]] | None]:
        return self.times.tobytes(), self.frauds.tobytes(), _pack_ids(self.ids), self.pending or None

    def __setstate__(self, state: tuple) -> None:
        self.times = array("q")
        self.times.frombytes(state[0])
        self.frauds = array("b")
        self.frauds.frombytes(state[1])
        self.ids = _unpack_ids(state[2])
        pending = state[3] if len(state) > 3 else None
        self.pending = dict(pending) if pending else None
        self._pending_oldest = min(v[0] for v in self.pending.values()) if self.pending else 0
        self._where = None


def feature_vector(time_us: int, amount: float, customer: Sequence[float], terminal: Sequence[float]) -> list[float]:
    """The 15 features in `FEATURE_NAMES` order from the two per-key halves."""
    weekend, night = time_flags(time_us)
    return [float(amount), weekend, night, *customer, *terminal]
