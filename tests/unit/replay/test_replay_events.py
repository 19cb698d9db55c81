"""What a replay sends, in which order: transactions by event time keyed by card, each label a set delay
later keyed by terminal, before the transactions of its release instant; labels past the end left out."""

from __future__ import annotations

import orjson
import pandas as pd

from fraudpipeline.replay.events import replay_events
from fraudpipeline.transactions import parse_label, parse_transaction

DAY_US = 86_400_000_000


def _table():
    return pd.DataFrame(
        {
            "transaction_id": [1, 2, 3, 4],
            "timestamp": pd.to_datetime(
                ["2018-08-01 00:00:00", "2018-08-01 12:00:00", "2018-08-02 00:00:00", "2018-08-03 00:00:00.25"],
                format="ISO8601",
            ),
            "customer_id": [10, 11, 10, 12],
            "terminal_id": [20, 21, 20, 22],
            "amount": [1.0, 2.5, 3.0, 4.0],
            "fraud": [1, 0, 1, 1],
        }
    )


def test_order_keys_and_wire_form():
    events = list(replay_events(_table(), label_delay_us=DAY_US, labels="fraud"))
    kinds = [(e.role, orjson.loads(e.value)["transaction_id"]) for e in events]
    # tx 1's label is released at tx 3's instant, before it; tx 3's label at 2018-08-03 00:00, before tx 4;
    # tx 4's label would come after the last transaction: not sent.
    assert kinds == [
        ("transactions", "1"),
        ("transactions", "2"),
        ("labels", "1"),
        ("transactions", "3"),
        ("labels", "3"),
        ("transactions", "4"),
    ]
    tx = [e for e in events if e.role == "transactions"]
    assert [e.key for e in tx] == [b"10", b"11", b"10", b"12"]
    assert all(parse_transaction(e.value) for e in tx)
    assert parse_transaction(tx[3].value).event_time_us == tx[3].event_time_us
    assert orjson.loads(tx[3].value)["timestamp"] == "2018-08-03T00:00:00.250000Z"
    labels = [e for e in events if e.role == "labels"]
    assert [e.key for e in labels] == [b"20", b"20"]
    assert parse_label(labels[0].value).fraud == 1 and labels[0].event_time_us == tx[0].event_time_us + DAY_US


def test_label_choice():
    assert sum(e.role == "labels" for e in replay_events(_table(), DAY_US, labels="none")) == 0
    all_labels = [orjson.loads(e.value) for e in replay_events(_table(), DAY_US, labels="all") if e.role == "labels"]
    assert [(lb["transaction_id"], lb["fraud"]) for lb in all_labels] == [("1", 1), ("2", 0), ("3", 1)]
