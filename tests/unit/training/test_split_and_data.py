"""The handbook split and the parquet loader's errors (the generator: tests/unit/data)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from fraudpipeline.data import (
    DataSetError,
    default_data_paths,
    load_transactions,
    resolve_transactions,
)
from fraudpipeline.data.handbook import HandbookConfig, transactions
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
    df = load_transactions(default_data_paths(), start="2018-07-25", end="2018-08-15")
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
        resolve_transactions(None)


def test_loader_reads_several_files_in_time_order(tmp_path):
    df = transactions(HandbookConfig(n_customers=50, n_terminals=100, days=10))
    half = len(df) // 2
    df.iloc[half:].to_parquet(tmp_path / "b.parquet")
    df.iloc[:half].rename(columns={"timestamp": "TX_DATETIME", "amount": "TX_AMOUNT"}).to_parquet(
        tmp_path / "a.parquet"
    )
    back = load_transactions([tmp_path / "b.parquet", tmp_path / "a.parquet"], start="2018-04-02")
    assert back["timestamp"].is_monotonic_increasing
    assert back["timestamp"].min() >= pd.Timestamp("2018-04-02")
    assert len(back) == int((df["timestamp"] >= pd.Timestamp("2018-04-02")).sum())
