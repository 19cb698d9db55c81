"""Reading transaction tables from parquet into the canonical form."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

ENV_VAR = "FRAUDPIPE_DATA"

CANONICAL_COLUMNS = ["transaction_id", "timestamp", "customer_id", "terminal_id", "amount", "fraud"]
# Handbook column names (the published daily files) -> canonical names.
HANDBOOK_COLUMNS = {
    "TRANSACTION_ID": "transaction_id",
    "TX_DATETIME": "timestamp",
    "CUSTOMER_ID": "customer_id",
    "TERMINAL_ID": "terminal_id",
    "TX_AMOUNT": "amount",
    "TX_FRAUD": "fraud",
    "TX_FRAUD_SCENARIO": "fraud_scenario",
}


class DataSetError(ValueError):
    """A data file that is missing or does not have the expected columns."""


def env_data_paths() -> list[Path]:
    """The files `$FRAUDPIPE_DATA` names (os.pathsep-separated); empty when it is not set."""
    env = os.environ.get(ENV_VAR, "").strip()
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p]


def default_data_paths(*, show_progress: bool = True) -> list[Path]:
    """`$FRAUDPIPE_DATA`, else the regenerated handbook data set (generated on first use, cached)."""
    paths = env_data_paths()
    if paths:
        return paths
    from fraudpipeline.data.handbook import ensure_handbook

    return [ensure_handbook(show_progress=show_progress)]


def to_canonical(df: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    df = df.rename(columns={k: v for k, v in HANDBOOK_COLUMNS.items() if k in df.columns})
    missing = [c for c in CANONICAL_COLUMNS if c not in df.columns]
    if missing:
        raise DataSetError(
            f"{path}: missing column(s) {missing}; a transaction file needs {CANONICAL_COLUMNS} "
            f"(or the handbook names {list(HANDBOOK_COLUMNS)[:6]})"
        )
    ts = pd.to_datetime(df["timestamp"])
    if getattr(ts.dt, "tz", None) is not None:  # features work on UTC wall-clock
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out = pd.DataFrame(
        {
            "transaction_id": df["transaction_id"].to_numpy(),
            "timestamp": ts.astype("datetime64[ns]").to_numpy(),
            "customer_id": df["customer_id"].to_numpy(),
            "terminal_id": df["terminal_id"].to_numpy(),
            "amount": df["amount"].astype("float64").to_numpy(),
            "fraud": df["fraud"].astype("int8").to_numpy(),
        }
    )
    if "fraud_scenario" in df.columns:
        out["fraud_scenario"] = df["fraud_scenario"].astype("int8").to_numpy()
    bad = ~out["fraud"].isin([0, 1])
    if bad.any():
        raise DataSetError(f"{path}: column 'fraud' must be 0 or 1, found {sorted(out.loc[bad, 'fraud'].unique())[:5]}")
    if out["amount"].isna().any() or (out["amount"] < 0).any():
        raise DataSetError(f"{path}: column 'amount' must be a number >= 0 on every row")
    return out


def load_transactions(
    paths: Sequence[str | Path],
    start: datetime | str | None = None,
    end: datetime | str | None = None,
) -> pd.DataFrame:
    """Read and concatenate parquet files, keep `start <= timestamp < end`, sort by time."""
    if not paths:
        raise DataSetError("no data file given; pass --data PATH or set FRAUDPIPE_DATA")
    frames = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DataSetError(f"data file not found: {path} (pass --data PATH or set {ENV_VAR})")
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a non-parquet file
            raise DataSetError(f"{path}: not a readable parquet file ({exc})") from exc
        df = to_canonical(df, path)
        if start is not None:
            df = df[df["timestamp"] >= pd.Timestamp(start)]
        if end is not None:
            df = df[df["timestamp"] < pd.Timestamp(end)]
        frames.append(df)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    # Stable: rows with the same timestamp keep file order, which is the stream order.
    out = out.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return out


@dataclass(frozen=True)
class Source:
    """Where a table came from, for messages and model metadata."""

    kind: str  # "files" (--data or $FRAUDPIPE_DATA) or "handbook" (the regenerated data set)
    description: str


def resolve_transactions(
    paths: Sequence[str | Path] | None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    show_progress: bool = True,
) -> tuple[pd.DataFrame, Source]:
    """`paths`, else `$FRAUDPIPE_DATA`, else the regenerated handbook data set.

    Named files must exist (a missing one is a DataSetError naming it); the handbook set is
    generated into the cache on first use (about 10 s, with a progress bar on stderr).
    """
    files = list(paths or env_data_paths())
    if files:
        return load_transactions(files, start, end), Source("files", ", ".join(str(p) for p in files))
    (cached,) = default_data_paths(show_progress=show_progress)
    return load_transactions([cached], start, end), Source(
        "handbook", f"the Fraud Detection Handbook's data set, regenerated ({cached})"
    )
