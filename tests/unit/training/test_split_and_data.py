"""The handbook split, the parquet loader's errors and the simulator."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudpipeline.data import (
    DataSetError,
    SimulatorConfig,
    default_data_paths,
    load_transactions,
    resolve_transactions,
    simulate,
)
from fraudpipeline.training.split import SplitDates, split


def _row(day: str, customer: int, fraud: int) -> dict:
    return {
        "transaction_id": 0,
        "timestamp": pd.Timestamp(day) + pd.Timedelta(hours=12),
        "customer_id": customer,
        "terminal_id": 1,
        "amount": 10.0,
        "fraud": fraud,
    }


def test_split_drops_cards_known_compromised_by_each_test_day():
    # train 07-25..07-31, delay 08-01..08-07, test 08-08..08-14
    rows = [
        _row("2018-07-26", 1, 1),  # known from training: card 1 never in the test set
        _row("2018-08-02", 2, 1),  # fraud on delay day 2: known from test day 3 (08-10) on
        _row("2018-08-07", 3, 1),  # last delay day: never known during this test week
    ]
    for day in pd.date_range("2018-08-08", "2018-08-14"):
        rows += [_row(str(day.date()), c, 0) for c in (1, 2, 3, 4)]
    df = pd.DataFrame(rows)
    train, test = split(df, SplitDates(date(2018, 7, 25)))
    assert list(train) == [0]
    kept = df.loc[test].groupby(df.loc[test, "timestamp"].dt.day)["customer_id"].apply(sorted).to_dict()
    assert kept[8] == [2, 3, 4] and kept[9] == [2, 3, 4]
    assert kept[10] == [3, 4] and kept[14] == [3, 4]


def test_handbook_split_sizes():
    paths = default_data_paths()
    if not all(p.exists() for p in paths):
        shared = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
        if os.environ.get("FRAUDPIPE_DATA", "").strip() or shared.is_dir():  # expected: a broken path fails
            pytest.fail(f"FRAUDPIPE_DATA is set or {shared} exists, but {paths[0]} is missing")
        pytest.skip(f"handbook data set not found at {paths[0]}: set FRAUDPIPE_DATA or put it in {shared}")
    df = load_transactions(paths, start="2018-07-25", end="2018-08-15")
    train, test = split(df, SplitDates(date(2018, 7, 25)))
    # The handbook's Chapter 3 figures.
    assert (len(train), int(df.loc[train, "fraud"].sum())) == (67_240, 598)
    assert (len(test), int(df.loc[test, "fraud"].sum())) == (58_264, 385)


def test_loader_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(DataSetError, match="data file not found: .*nope.parquet"):
        load_transactions([tmp_path / "nope.parquet"])
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"TX_DATETIME": pd.to_datetime(["2018-04-01"]), "CUSTOMER_ID": [1]}).to_parquet(bad)
    with pytest.raises(
        DataSetError, match=r"missing column\(s\) \['transaction_id', 'terminal_id', 'amount', 'fraud'\]"
    ):
        load_transactions([bad])
    text = tmp_path / "notparquet.parquet"
    text.write_text("hello")
    with pytest.raises(DataSetError, match="not a readable parquet file"):
        load_transactions([text])
    monkeypatch.setenv("FRAUDPIPE_DATA", str(tmp_path / "absent.parquet"))
    with pytest.raises(DataSetError, match="absent.parquet"):
        resolve_transactions(None, simulate_if_missing=False)


def test_loader_reads_several_files_in_time_order(tmp_path):
    df = simulate(SimulatorConfig(n_customers=50, n_terminals=100, days=10, seed=1))
    half = len(df) // 2
    df.iloc[half:].to_parquet(tmp_path / "b.parquet")
    df.iloc[:half].rename(columns={"timestamp": "TX_DATETIME", "amount": "TX_AMOUNT"}).to_parquet(
        tmp_path / "a.parquet"
    )
    back = load_transactions([tmp_path / "b.parquet", tmp_path / "a.parquet"], start="2018-04-02")
    assert back["timestamp"].is_monotonic_increasing
    assert back["timestamp"].min() >= pd.Timestamp("2018-04-02")
    assert len(back) == int((df["timestamp"] >= pd.Timestamp("2018-04-02")).sum())


def test_default_path_falls_back_to_the_simulator(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAUDPIPE_DATA", str(tmp_path / "absent.parquet"))
    df, source = resolve_transactions(None, start="2018-07-01", end="2018-07-03")
    assert source.kind == "simulator" and "absent.parquet" in source.description
    assert df["timestamp"].min() >= pd.Timestamp("2018-07-01") and len(df) > 10_000


def test_simulator_is_seedable_and_follows_the_recipe():
    config = SimulatorConfig(n_customers=400, n_terminals=800, days=60, seed=5)
    a, b = simulate(config), simulate(config)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate(SimulatorConfig(n_customers=400, n_terminals=800, days=60, seed=6)))
    # Scenario 1: every amount above 220 outside the card scenario is fraud.
    assert (a.loc[(a["amount"] > 220) & (a["fraud_scenario"] != 3), "fraud"] == 1).all()
    assert set(a["fraud_scenario"].unique()) == {0, 1, 2, 3}
    hours = a["timestamp"].dt.hour
    assert abs(hours.mean() - 12) < 0.5  # centred on noon
    assert a["timestamp"].is_monotonic_increasing and a["transaction_id"].is_unique
    assert np.isclose(a.groupby("customer_id").size().mean() / 60, 2.0, atol=0.3)  # U(0, 4) tx/day
