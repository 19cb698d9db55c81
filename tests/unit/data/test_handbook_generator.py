"""The handbook generator on small configurations, its cache and `fraudpipe data handbook`.

The full data set against the published files: tests/integration/data/test_handbook_reference.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudpipeline.data import DataSetError, resolve_transactions
from fraudpipeline.data import handbook as hb

SMALL = hb.HandbookConfig(n_customers=200, n_terminals=400, days=30)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return hb.generate(SMALL)


def test_the_small_set_is_deterministic_and_in_the_published_form(small):
    pd.testing.assert_frame_equal(small, hb.generate(SMALL))
    assert list(small.columns) == hb.COLUMNS
    assert all(small[c].dtype == np.int64 for c in hb.COLUMNS if c not in ("TX_DATETIME", "TX_AMOUNT"))
    assert small["TX_DATETIME"].dtype == "datetime64[ns]" and small["TX_AMOUNT"].dtype == np.float64
    # Numbered from 0 in time order; rows in the daily files' order (by time, ties unordered).
    assert sorted(small["TRANSACTION_ID"]) == list(range(len(small)))
    assert small["TX_TIME_SECONDS"].is_monotonic_increasing
    by_id = small.sort_values("TRANSACTION_ID")
    assert by_id["TX_TIME_SECONDS"].is_monotonic_increasing
    seconds = small["TX_TIME_SECONDS"]
    assert (small["TX_DATETIME"] == pd.Timestamp("2018-04-01") + pd.to_timedelta(seconds, unit="s")).all()
    assert (small["TX_TIME_DAYS"] == seconds // 86_400).all() and ((seconds % 86_400) > 0).all()
    assert small["TX_TIME_DAYS"].max() == SMALL.days - 1


def test_customers_pay_at_terminals_within_the_radius(small):
    customers = hb.customer_profiles(SMALL)
    terminals = hb.terminal_profiles(SMALL)
    assert np.allclose(customers[:, 3], customers[:, 2] / 2)
    assert (customers[:, 2] >= 5).all() and (customers[:, 2] <= 100).all()
    dist = np.hypot(*(customers[small["CUSTOMER_ID"], :2] - terminals[small["TERMINAL_ID"]]).T)
    assert (dist < SMALL.radius).all()
    assert hb.terminals_within(customers[0, :2], terminals, SMALL.radius) == sorted(
        hb.terminals_within(customers[0, :2], terminals, SMALL.radius)
    )


def test_fraud_scenarios(small):
    genuine = small[small["TX_FRAUD"] == 0]
    assert (genuine["TX_FRAUD_SCENARIO"] == 0).all() and (genuine["TX_AMOUNT"] <= 220).all()
    assert set(small.loc[small["TX_FRAUD"] == 1, "TX_FRAUD_SCENARIO"]) == {1, 2, 3}
    # Scenario 1 is amount > 220 before scenarios 2 and 3 overwrite it.
    assert (small.loc[small["TX_FRAUD_SCENARIO"] == 1, "TX_AMOUNT"] > 220).all()
    # Scenario 3 multiplies by 5 amounts that were rounded to cents.
    cents = small.loc[small["TX_FRAUD_SCENARIO"] == 0, "TX_AMOUNT"] * 100
    assert np.allclose(cents, cents.round())


def test_the_published_first_rows():
    """Customer 596's transaction at 00:00:31 opens the handbook's table (Chapter 3, "Transaction data simulator")."""
    customers = hb.customer_profiles(hb.HandbookConfig())
    terminals = hb.terminal_profiles(hb.HandbookConfig())
    seconds, terminal, amount = hb.customer_transactions(
        596, customers[596], hb.terminals_within(customers[596, :2], terminals, 5.0), days=1
    )
    first = min(zip(seconds, terminal, np.round(amount, 2)))
    assert first == (31, 3156, 57.16)


def test_the_canonical_form_is_what_loaders_return(small):
    table = hb.transactions(SMALL)
    assert table["timestamp"].is_monotonic_increasing and len(table) == len(small)
    assert table["fraud"].sum() == small["TX_FRAUD"].sum()


def test_cache_is_written_once_atomically_under_a_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAUDPIPE_CACHE", str(tmp_path))
    # Two processes at once: both get the same complete file, no temporary file is left.
    code = (
        "from fraudpipeline.data import handbook as hb;"
        "print(hb.ensure_handbook(hb.HandbookConfig(n_customers=200, n_terminals=400, days=30), show_progress=False))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    path = hb.cached_path(SMALL)
    assert outs == [str(path)] * 2 and path.parent == tmp_path / "datasets"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".lock"]
    pd.testing.assert_frame_equal(pd.read_parquet(path), hb.generate(SMALL))
    mtime = path.stat().st_mtime_ns
    assert hb.ensure_handbook(SMALL) == path and path.stat().st_mtime_ns == mtime  # read from the cache
    assert hb.cached_path() == tmp_path / "datasets" / f"fraud-handbook-v{hb.FORMAT_VERSION}.parquet"


def test_default_data_is_the_regenerated_set_and_named_files_must_exist(tmp_path, monkeypatch):
    monkeypatch.delenv("FRAUDPIPE_DATA", raising=False)
    monkeypatch.setenv("FRAUDPIPE_CACHE", str(tmp_path))
    monkeypatch.setattr(hb, "HandbookConfig", lambda: SMALL)  # the default set, made small
    df, source = resolve_transactions(None, start="2018-04-10", end="2018-04-12")
    assert source.kind == "handbook" and str(hb.cached_path(SMALL)) in source.description
    assert len(df) > 0 and df["timestamp"].min() >= pd.Timestamp("2018-04-10")
    monkeypatch.setenv("FRAUDPIPE_DATA", str(tmp_path / "absent.parquet"))
    with pytest.raises(DataSetError, match=r"data file not found: .*absent\.parquet .*FRAUDPIPE_DATA"):
        resolve_transactions(None)


def test_no_product_code_names_the_shared_folder():
    root = Path(hb.__file__).resolve().parents[2]
    product = [root / "fraudpipeline", root / "operator", root / "serving", root / "flink"]
    hits = [
        str(path)
        for folder in product
        for path in folder.rglob("*.py")
        if "shared" + "/datasets" in path.read_text() or '"shared"' in path.read_text()
    ]
    assert hits == []


def test_data_handbook_command_writes_a_copy(tmp_path, monkeypatch):
    cache = Path(os.environ.get("FRAUDPIPE_CACHE") or Path.home() / ".cache" / "fraudpipeline")
    out = tmp_path / "hb.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "fraudpipeline.cli", "data", "handbook", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FRAUDPIPE_CACHE": str(cache)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert "Le Borgne" in done.stderr
    meta = pd.read_parquet(out, columns=["TRANSACTION_ID", "TX_FRAUD"])
    assert (len(meta), int(meta["TX_FRAUD"].sum())) == (1_754_155, 14_681)
