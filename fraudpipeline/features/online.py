"""Online (incremental) features: one transaction or label at a time, bounded state per key.

A streaming job keeps one `CustomerState` per customer key and one `TerminalState` per
terminal key (for example in a Flink ValueState), calls `update(...)` for every transaction
and `add_label(...)` for every feedback label, then joins the two halves with
`feature_vector(...)`. The definitions are the ones of `offline.py` (see docs/features.md);
pure Python, no numpy, so a state is cheap to pickle and restore.

Times are integer microseconds since the epoch, UTC (`fraudpipeline.transactions.event_time_us`).
Transactions of one key are expected in event-time order (Kafka keeps per-key order); a late
one is still scored against its own window, but entries older than the longest window behind
the newest event seen are gone.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence

from fraudpipeline.features.definitions import (
    CUSTOMER_WINDOWS_DAYS,
    LABEL_DELAY_DAYS,
    NIGHT_LAST_HOUR,
    TERMINAL_WINDOWS_DAYS,
)

US_PER_DAY = 86_400 * 1_000_000
US_PER_HOUR = 3_600 * 1_000_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)

_CUSTOMER_SPANS = tuple(w * US_PER_DAY for w in CUSTOMER_WINDOWS_DAYS)
_CUSTOMER_KEEP = max(_CUSTOMER_SPANS)
_DELAY = LABEL_DELAY_DAYS * US_PER_DAY
_TERMINAL_SPANS = tuple((LABEL_DELAY_DAYS + w) * US_PER_DAY for w in TERMINAL_WINDOWS_DAYS)
_TERMINAL_KEEP = max(_TERMINAL_SPANS)


def time_flags(time_us: int) -> tuple[float, float]:
    """(tx_during_weekend, tx_during_night) for one UTC epoch-microsecond time."""
    days, in_day = divmod(time_us, US_PER_DAY)
    weekend = 1.0 if (days + _EPOCH_WEEKDAY) % 7 >= 5 else 0.0
    night = 1.0 if in_day // US_PER_HOUR <= NIGHT_LAST_HOUR else 0.0
    return weekend, night


class CustomerState:
    """Recent transactions of one customer: times and amounts of the last 30 days.

    `update` returns (nb_tx_1day, avg_amount_1day, nb_tx_7day, avg_amount_7day, nb_tx_30day,
    avg_amount_30day) over (t - w days, t], the current transaction included.
    """

    __slots__ = ("times", "amounts")

    def __init__(self) -> None:
        self.times: array = array("q")  # sorted event times (us)
        self.amounts: array = array("d")

    def __len__(self) -> int:
        return len(self.times)

    def update(self, time_us: int, amount: float) -> tuple[float, ...]:
        times, amounts = self.times, self.amounts
        # Insert after every entry with the same or an earlier time: ties keep arrival order.
        pos = bisect_right(times, time_us)
        times.insert(pos, time_us)
        amounts.insert(pos, float(amount))
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
        self._evict(times[-1] - _CUSTOMER_KEEP)
        return tuple(out)

    def _evict(self, cutoff: int) -> None:
        # Entries at or before `cutoff` are outside every window of any transaction at or
        # after the newest one.
        drop = bisect_right(self.times, cutoff)
        if drop:
            del self.times[:drop]
            del self.amounts[:drop]

    # Compact pickling: two machine arrays as bytes (a 30-day customer is ~1-2 KiB).
    def __getstate__(self) -> tuple[bytes, bytes]:
        return self.times.tobytes(), self.amounts.tobytes()

    def __setstate__(self, state: tuple[bytes, bytes]) -> None:
        self.times = array("q")
        self.times.frombytes(state[0])
        self.amounts = array("d")
        self.amounts.frombytes(state[1])

    def to_bytes(self) -> bytes:
        """Self-contained binary form (for a byte-array state): count, times, amounts."""
        n = len(self.times)
        return n.to_bytes(4, "little") + self.times.tobytes() + self.amounts.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> CustomerState:
        n = int.from_bytes(data[:4], "little")
        state = cls()
        state.times.frombytes(data[4 : 4 + 8 * n])
        state.amounts.frombytes(data[4 + 8 * n : 4 + 16 * n])
        return state


class TerminalState:
    """Recent transactions of one terminal and their labels: the last delay + 30 days.

    `update` returns (nb_tx_1day, risk_1day, nb_tx_7day, risk_7day, nb_tx_30day, risk_30day)
    over (t - delay - w days, t - delay], then records the transaction. The risk is the share
    of those transactions labelled fraud by the time of the call (unlabelled ones count as
    genuine, since feedback streams often carry only frauds); 0 for an empty window.
    `add_label` records feedback for a transaction of this terminal.
    """

    __slots__ = ("times", "frauds", "ids")

    def __init__(self) -> None:
        self.times: array = array("q")  # sorted event times (us)
        self.frauds: array = array("b")  # 1 fraud, 0 genuine or not labelled yet
        self.ids: list[str] = []  # transaction ids, to attach labels

    def __len__(self) -> int:
        return len(self.times)

    def update(self, time_us: int, transaction_id: str) -> tuple[float, ...]:
        times, frauds = self.times, self.frauds
        hi = bisect_right(times, time_us - _DELAY)
        out: list[float] = []
        for span in _TERMINAL_SPANS:
            lo = bisect_right(times, time_us - span, 0, hi)
            count = hi - lo
            out.append(float(count))
            out.append(sum(frauds[lo:hi]) / count if count else 0.0)
        self._record(time_us, str(transaction_id), None)
        return tuple(out)

    def add_label(self, time_us: int, transaction_id: str, fraud: int) -> bool:
        """Attach a label to a transaction of this terminal; False if it is too old to matter.

        `time_us` is the transaction's own time (the label record carries it). A label that
        arrives before its transaction is kept and merged when the transaction comes.
        """
        if self.times and time_us <= self.times[-1] - _TERMINAL_KEEP:
            return False
        self._record(time_us, str(transaction_id), 1 if fraud else 0)
        return True

    def _record(self, time_us: int, transaction_id: str, fraud: int | None) -> None:
        times = self.times
        lo = bisect_right(times, time_us - 1)
        hi = bisect_right(times, time_us)
        for i in range(lo, hi):  # same time: is it the same transaction?
            if self.ids[i] == transaction_id:
                if fraud is not None:
                    self.frauds[i] = fraud
                return
        times.insert(hi, time_us)
        self.frauds.insert(hi, fraud or 0)
        self.ids.insert(hi, transaction_id)
        drop = bisect_right(times, times[-1] - _TERMINAL_KEEP)
        if drop:
            del times[:drop]
            del self.frauds[:drop]
            del self.ids[:drop]

    def __getstate__(self) -> tuple[bytes, bytes, list[str]]:
        return self.times.tobytes(), self.frauds.tobytes(), self.ids

    def __setstate__(self, state: tuple[bytes, bytes, list[str]]) -> None:
        self.times = array("q")
        self.times.frombytes(state[0])
        self.frauds = array("b")
        self.frauds.frombytes(state[1])
        self.ids = list(state[2])


def feature_vector(time_us: int, amount: float, customer: Sequence[float], terminal: Sequence[float]) -> list[float]:
    """The 15 features in `FEATURE_NAMES` order from the two per-key halves."""
    weekend, night = time_flags(time_us)
    return [float(amount), weekend, night, *customer, *terminal]
