"""Offline (vectorised) features over a whole transaction table, for training.

Same definitions as `online.py` (see docs/features.md). Windows are computed with binary
search over per-key sorted event times, which is equivalent to the handbook's pandas
`groupby(key).rolling('<n>d')` but runs in about a second over a million rows.

Ties: transactions of one key with the same timestamp are ordered by their row order in the
input (the stream order), and a transaction only sees itself and the rows before it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudpipeline.features.definitions import (
    CUSTOMER_WINDOWS_DAYS,
    FEATURE_NAMES,
    LABEL_DELAY_DAYS,
    TERMINAL_WINDOWS_DAYS,
    US_PER_DAY,
    time_flags,
)


def event_time_us(timestamps: pd.Series) -> np.ndarray:
    """Microseconds since the epoch (UTC) as int64; naive timestamps are taken as UTC."""
    ts = pd.to_datetime(timestamps)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy(dtype="datetime64[us]").astype(np.int64)


def _group_order(keys: np.ndarray, times_us: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable order by (key, time, row), plus dense key codes and times in that order."""
    codes = pd.factorize(keys, sort=False)[0].astype(np.int64)
    order = np.lexsort((np.arange(len(keys)), times_us, codes))
    return order, codes[order], times_us[order]


def _composite(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """One sortable int64 per row: key code in the high part, time offset in the low part.

    Consecutive keys are separated by more than any window, so a search for `time - window`
    never leaves the row's own key group.
    """
    if len(times) == 0:
        return times.astype(np.int64)
    t0 = int(times.min())
    span = (
        int(times.max())
        - t0
        + (max(*CUSTOMER_WINDOWS_DAYS, *TERMINAL_WINDOWS_DAYS) + LABEL_DELAY_DAYS + 2) * US_PER_DAY
    )
    if (int(codes.max()) + 1) * span >= 2**62:
        raise ValueError("too many keys or too long a time span for the composite index")
    return codes * span + (times - t0)


def _window_sums(values: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """For each row i, values[lo[i]] + ... + values[i], added left to right starting from 0.0.

    The same order of additions as the online state's loop, so both give bit-identical sums
    (a prefix-sum difference would differ in the last digits). Cost is the total window
    length, since rows drop out of the loop as their window is done.
    """
    total = np.zeros(len(values), dtype=np.float64)
    cur = lo.astype(np.int64).copy()
    active = np.arange(len(values))
    while active.size:
        total[active] += values[cur[active]]
        cur[active] += 1
        active = active[cur[active] <= active]
    return total


def customer_features(customer_ids: np.ndarray, times_us: np.ndarray, amounts: np.ndarray) -> dict[str, np.ndarray]:
    """Count and mean amount over (t - w days, t], the current transaction included."""
    n = len(times_us)
    order, codes, times = _group_order(customer_ids, times_us)
    comp = _composite(codes, times)
    amt = np.asarray(amounts, dtype=np.float64)[order]
    idx = np.arange(n)
    out: dict[str, np.ndarray] = {}
    for w in CUSTOMER_WINDOWS_DAYS:
        lo = np.searchsorted(comp, comp - w * US_PER_DAY, side="right")  # first row with time > t - w
        count = (idx - lo + 1).astype(np.float64)
        nb = np.empty(n)
        avg = np.empty(n)
        nb[order] = count
        avg[order] = _window_sums(amt, lo) / count
        out[f"customer_nb_tx_{w}day"] = nb
        out[f"customer_avg_amount_{w}day"] = avg
    return out


def terminal_features(terminal_ids: np.ndarray, times_us: np.ndarray, frauds: np.ndarray) -> dict[str, np.ndarray]:
    """Count and fraud ratio over (t - delay - w days, t - delay]; ratio 0 for an empty window."""
    n = len(times_us)
    order, codes, times = _group_order(terminal_ids, times_us)
    comp = _composite(codes, times)
    # Integer labels: the prefix sums are exact, so no per-group restart is needed.
    fcum = np.r_[0, np.cumsum(np.asarray(frauds, dtype=np.int64)[order])]
    hi = np.searchsorted(comp, comp - LABEL_DELAY_DAYS * US_PER_DAY, side="right")
    out: dict[str, np.ndarray] = {}
    for w in TERMINAL_WINDOWS_DAYS:
        lo = np.searchsorted(comp, comp - (LABEL_DELAY_DAYS + w) * US_PER_DAY, side="right")
        count = hi - lo
        nfraud = fcum[hi] - fcum[lo]
        risk = np.divide(nfraud, count, out=np.zeros(n), where=count > 0)
        nb = np.empty(n)
        rk = np.empty(n)
        nb[order] = count
        rk[order] = risk
        out[f"terminal_nb_tx_{w}day"] = nb
        out[f"terminal_risk_{w}day"] = rk
    return out


def compute_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The 15 model features, in `FEATURE_NAMES` order, for every row of `frame`.

    `frame` has the canonical columns `timestamp`, `customer_id`, `terminal_id`, `amount` and
    `fraud` (see fraudpipeline.data). Rows are in stream order (ties on time keep that order).
    Every row's label is taken as known exactly `LABEL_DELAY_DAYS` after it, as in the handbook.
    """
    missing = [c for c in ("timestamp", "customer_id", "terminal_id", "amount", "fraud") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"transaction table lacks column(s) {missing}; load it with fraudpipeline.data.load_transactions"
        )
    times = event_time_us(frame["timestamp"])
    weekend, night = time_flags(times)
    cols: dict[str, np.ndarray] = {
        "tx_amount": frame["amount"].to_numpy(dtype=np.float64),
        "tx_during_weekend": weekend,
        "tx_during_night": night,
    }
    cols.update(customer_features(frame["customer_id"].to_numpy(), times, frame["amount"].to_numpy()))
    cols.update(terminal_features(frame["terminal_id"].to_numpy(), times, frame["fraud"].to_numpy()))
    return pd.DataFrame({name: cols[name] for name in FEATURE_NAMES}, index=frame.index)
