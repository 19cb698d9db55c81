"""Helpers shared by the feature tests (a module of its own: `conftest` names collide across folders)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def handbook_features(df: pd.DataFrame, delay_days: int = 7, windows=(1, 7, 30)) -> pd.DataFrame:
    """The handbook's feature procedure (Ch. 3): pandas time-based rolling windows per key.

    Kept independent of fraudpipeline.features on purpose: it is the yardstick. `df` is sorted
    by time; ties within a key keep row order, as the stream does.
    """

    def rolling(key: str, column: str, days: int, how: str) -> np.ndarray:
        # Grouped by sorted key, the rolling output comes group after group in row order:
        # exactly the order of a stable sort by key.
        frame = df[[key, "timestamp"]].assign(v=df[column].astype(float)).sort_values(key, kind="stable")
        r = frame.groupby(key, sort=True).rolling(f"{days}d", on="timestamp")["v"]
        res = r.count() if how == "count" else r.sum()
        out = pd.Series(res.to_numpy(), index=frame.index)
        return out.reindex(df.index).to_numpy()

    out = pd.DataFrame(index=df.index)
    ts = pd.DatetimeIndex(df["timestamp"])
    out["tx_amount"] = df["amount"].to_numpy()
    out["tx_during_weekend"] = (ts.weekday >= 5).astype(float)
    out["tx_during_night"] = (ts.hour <= 6).astype(float)
    for w in windows:
        nb = rolling("customer_id", "amount", w, "count")
        out[f"customer_nb_tx_{w}day"] = nb
        out[f"customer_avg_amount_{w}day"] = rolling("customer_id", "amount", w, "sum") / nb
    nf_delay = rolling("terminal_id", "fraud", delay_days, "sum")
    nt_delay = rolling("terminal_id", "fraud", delay_days, "count")
    for w in windows:
        nf = rolling("terminal_id", "fraud", delay_days + w, "sum") - nf_delay
        nt = rolling("terminal_id", "fraud", delay_days + w, "count") - nt_delay
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"terminal_nb_tx_{w}day"] = nt
            out[f"terminal_risk_{w}day"] = np.nan_to_num(nf / nt, nan=0.0)
    return out
