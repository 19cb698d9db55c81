"""What the job writes: alerts carry the transaction as it came and the features by name; dead letters
keep the original bytes and say why in headers."""

from __future__ import annotations

import orjson

from fp_flink import records
from fraudpipeline.features import FEATURE_NAMES


def test_alert_carries_the_transaction_the_features_and_the_decision():
    tx = (
        b'{"transaction_id": "t1", "timestamp": "2018-08-08T02:43:34Z", "customer_id": "c", "terminal_id": "x", '
        b'"amount": 12.5, "channel": "web"}'
    )
    value = orjson.loads(
        records.alert_value(
            tx,
            [float(i) for i in range(15)],
            0.9,
            0.4,
            "fraud-xgb:v1",
            "ns/p",
            "ns.p.transactions/2/77",
            1_800_000_000.5,
        )
    )
    assert value["transaction"] == orjson.loads(tx)
    assert list(value["features"]) == FEATURE_NAMES and value["features"]["tx_amount"] == 0.0
    assert value["score"] == 0.9 and value["threshold"] == 0.4 and value["model_tag"] == "fraud-xgb:v1"
    assert value["source"] == {"topic": "ns.p.transactions", "partition": 2, "offset": 77}
    assert value["decided_at"] == "2027-01-15T08:00:00.500Z"


def test_dead_letter_headers_name_reason_field_kind_and_origin():
    headers = records.dead_letter_headers(
        "invalid transaction: field 'amount' ...", "amount", records.INVALID, "a.b-c_d/0/12", "ns/p"
    )
    assert headers[records.H_TOPIC] == b"a.b-c_d" and headers[records.H_PARTITION] == b"0"
    assert headers[records.H_OFFSET] == b"12" and headers[records.H_FIELD] == b"amount"
    assert headers[records.H_KIND] == b"invalid-record" and headers[records.H_PIPELINE] == b"ns/p"
    assert headers[records.H_FAILED_AT].endswith(b"Z")


def test_score_is_compact():
    value = orjson.loads(records.score_value("t1", "c", "x", 1, 0.1, False, 0.4, "fraud-xgb:v1", "ns/p", 2.0))
    assert value["decided_at_ms"] == 2000 and value["is_fraud"] is False and "features" not in value


def test_null_key_and_tombstone_are_restored_from_their_flags():
    source = f"t/1/5/{records.NO_KEY}/{records.NO_VALUE}"
    assert records.split_source(source) == ("t", 1, 5)
    assert records.original(b"", b"", source) == (None, None)
    assert records.original(b"k", b"v", "t/1/5") == (b"k", b"v")
    assert records.original(b"", b"{}", f"t/1/5/{records.NO_KEY}") == (None, b"{}")
