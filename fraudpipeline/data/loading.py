"""Reading transaction tables from parquet into the canonical form."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

ENV_VAR = "FRAUDPIPE_DATA"
# Relative to the repository root: the read-only shared folder beside the checkout.
DEFAULT_RELATIVE = Path("..") / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"

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


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_data_paths() -> list[Path]:
    """`$FRAUDPIPE_DATA` (os.pathsep-separated) or the shared handbook file beside the repo."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [(repo_root() / DEFAULT_RELATIVE).resolve()]


def _to_canonical(df: pd.DataFrame, path: Path) -> pd.DataFrame:
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
        df = _to_canonical(df, path)
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

    kind: str  # "files" or "simulator"
    description: str


def resolve_transactions(
    paths: Sequence[str | Path] | None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    *,
    simulate_if_missing: bool = True,
    seed: int = 0,
) -> tuple[pd.DataFrame, Source]:
    """Explicit paths must exist; without them, the default file or else the simulator."""
    if paths:
        return load_transactions(paths, start, end), Source("files", ", ".join(str(p) for p in paths))
    defaults = default_data_paths()
    if all(p.exists() for p in defaults):
        return load_transactions(defaults, start, end), Source("files", ", ".join(str(p) for p in defaults))
    if not simulate_if_missing:
        raise DataSetError(f"data set not found: {', '.join(map(str, defaults))} (pass --data PATH or set {ENV_VAR})")
    from fraudpipeline.data.simulator import SimulatorConfig, simulate

    config = SimulatorConfig(seed=seed)
    df = simulate(config)
    if start is not None:
        df = df[df["timestamp"] >= pd.Timestamp(start)]
    if end is not None:
        df = df[df["timestamp"] < pd.Timestamp(end)]
    missing = ", ".join(map(str, defaults))
    return df.reset_index(drop=True), Source("simulator", f"simulator (seed {seed}); data set not found at {missing}")
