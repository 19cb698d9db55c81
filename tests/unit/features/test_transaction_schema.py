"""The wire schema: valid records parse, bad ones fail naming the field and the fix."""

from __future__ import annotations

import json

import pytest

from fraudpipeline.transactions import InvalidRecordError, parse_label, parse_transaction

GOOD_TX = {
    "transaction_id": "tx-1",
    "timestamp": "2018-07-25T13:45:00Z",
    "customer_id": 42,
    "terminal_id": "t-7",
    "amount": 57.16,
}
GOOD_LABEL = {
    "transaction_id": "tx-1",
    "customer_id": "42",
    "terminal_id": "t-7",
    "timestamp": "2018-07-25T15:45:00+02:00",
    "fraud": 1,
}


def test_valid_transaction_keeps_extra_fields_and_normalises_ids():
    tx = parse_transaction(json.dumps({**GOOD_TX, "channel": "web"}).encode())
    assert tx.customer_id == "42"
    assert tx.extra == {"channel": "web"}
    assert tx.event_time_us == 1_532_526_300_000_000


def test_label_time_is_the_transaction_time_in_utc():
    label = parse_label(GOOD_LABEL)
    assert label.fraud == 1
    assert label.event_time_us == parse_transaction(GOOD_TX).event_time_us


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        ({"timestamp": "2018-07-25 13:45:00"}, "timestamp", "RFC 3339"),  # no offset
        ({"timestamp": 1532526300}, "timestamp", "RFC 3339"),  # epoch number
        ({"timestamp": "yesterday"}, "timestamp", "RFC 3339"),
        ({"amount": -1}, "amount", ">= 0"),
        ({"amount": "12,50"}, "amount", ">= 0"),
        ({"amount": 1e300}, "amount", "<= 3.4e38"),
        ({"customer_id": ""}, "customer_id", "non-empty"),
        ({"terminal_id": True}, "terminal_id", "non-empty"),
        ({"transaction_id": None}, "transaction_id", "non-empty"),
    ],
)
def test_bad_transaction_names_the_field(change, field, hint):
    with pytest.raises(InvalidRecordError) as err:
        parse_transaction(json.dumps({**GOOD_TX, **change}))
    assert err.value.field == field
    assert f"field '{field}'" in str(err.value)
    assert hint in str(err.value)


def test_missing_field_and_non_object():
    body = {k: v for k, v in GOOD_TX.items() if k != "amount"}
    with pytest.raises(InvalidRecordError, match="field 'amount' is missing"):
        parse_transaction(body)
    with pytest.raises(InvalidRecordError, match="must be a JSON object"):
        parse_transaction(b"[1, 2]")
    with pytest.raises(InvalidRecordError, match="JSON"):
        parse_transaction(b"{not json")


@pytest.mark.parametrize("fraud", [2, -1, True, "1", None, 0.5])
def test_bad_label_names_fraud(fraud):
    with pytest.raises(InvalidRecordError) as err:
        parse_label({**GOOD_LABEL, "fraud": fraud})
    assert err.value.field == "fraud"
    assert "0 (genuine) or 1 (fraud)" in str(err.value)
