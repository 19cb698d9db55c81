"""`transaction_fields` (the streaming job's fast path) reads every record exactly as `parse_transaction`:
the same values for what the model accepts, the same InvalidRecordError for what it refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudpipeline.transactions import InvalidRecordError, parse_transaction, transaction_fields

ids = st.one_of(
    st.text(max_size=130),
    st.integers(min_value=-(10**130), max_value=10**130),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.just(""),
)
times = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat()),
    st.from_regex(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?", fullmatch=True),
    st.integers(),
    st.none(),
    st.text(max_size=30),
)
amounts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.text(max_size=10),
    st.booleans(),
    st.none(),
    st.just(3.4028234663852886e38),
    st.just(3.5e38),
)


def outcome(fn, data):
    try:
        return ("ok", fn(data))
    except InvalidRecordError as exc:
        return ("error", str(exc))


def model_fields(data):
    tx = parse_transaction(data)
    return tx.transaction_id, tx.event_time_us, tx.customer_id, tx.terminal_id, tx.amount


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "transaction_id": ids,
            "timestamp": times,
            "customer_id": ids,
            "terminal_id": ids,
            "amount": amounts,
            "channel": st.text(max_size=5),
        },
    )
)
def test_fast_path_equals_the_model(doc):
    data = json.dumps(doc).encode()
    assert outcome(transaction_fields, data) == outcome(model_fields, data)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1, 2]",
        b'{"transaction_id": "1"',
        b"\xff\xfe",
        b"null",
        b'"text"',
        b'{"transaction_id": "1", "timestamp": "2018-08-08T10:00:01Z", "customer_id": "4", "terminal_id": "8", '
        b'"amount": -1, "amount": 5}',
        b'{"transaction_id": "1", "timestamp": "2018-08-08T10:00:01Z", "customer_id": "4", "terminal_id": "8", '
        b'"amount": 1e400}',
    ],
)
def test_odd_documents_are_read_as_the_model_reads_them(data):
    assert outcome(transaction_fields, data) == outcome(model_fields, data)
