"""The request models follow the feature contract and reject bad input with the field's name."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from fp_serving.schemas import FLOAT32_MAX, MAX_BATCH_ROWS, MAX_COUNT, Features, ScoreBatchRequest, feature_values
from fraudpipeline.features import FEATURE_NAMES


def test_fields_are_the_contract_in_order():
    assert list(Features.model_fields) == FEATURE_NAMES


def test_values_come_out_in_contract_order(feature_row):
    f = Features.model_validate_json(orjson.dumps(feature_row))
    assert feature_values(f) == tuple(float(feature_row[n]) for n in FEATURE_NAMES)


def test_integral_floats_are_accepted_for_counts_and_flags(feature_row):
    row = {**feature_row, "customer_nb_tx_1day": 2.0, "tx_during_night": 1.0}
    assert Features.model_validate_json(orjson.dumps(row)).customer_nb_tx_1day == 2


def _error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tx_amount": -1}, "tx_amount"),
        ({"tx_during_weekend": 2}, "tx_during_weekend"),
        ({"customer_nb_tx_7day": 1.5}, "customer_nb_tx_7day"),
        ({"terminal_risk_7day": 1.2}, "terminal_risk_7day"),
        ({"customer_avg_amount_1day": "a lot"}, "customer_avg_amount_1day"),
        ({"tx_amont": 3.0}, "tx_amont"),  # misspelt: reported, not ignored
    ],
)
def test_bad_field_is_named(feature_row, change, field):
    with pytest.raises(ValidationError) as err:
        Features.model_validate_json(orjson.dumps({**feature_row, **change}))
    assert field in _error_fields(err.value)


def test_missing_field_is_named(feature_row):
    row = dict(feature_row)
    del row["terminal_risk_30day"]
    with pytest.raises(ValidationError) as err:
        Features.model_validate_json(orjson.dumps(row))
    assert _error_fields(err.value) == {"terminal_risk_30day"}


def test_non_finite_numbers_are_rejected(feature_row):
    body = orjson.dumps(feature_row).replace(b'"tx_amount":57.2', b'"tx_amount":NaN')
    with pytest.raises(ValidationError) as err:
        Features.model_validate_json(body)
    assert "tx_amount" in _error_fields(err.value) or err.value.errors()[0]["type"] == "json_invalid"


def test_batch_limits(feature_row):
    with pytest.raises(ValidationError) as err:
        ScoreBatchRequest.model_validate({"rows": []})
    assert _error_fields(err.value) == {"rows"}
    with pytest.raises(ValidationError):
        ScoreBatchRequest.model_validate({"rows": [feature_row] * (MAX_BATCH_ROWS + 1)})
    bad = [feature_row, {**feature_row, "tx_amount": -5}]
    with pytest.raises(ValidationError) as err:
        ScoreBatchRequest.model_validate({"rows": bad})
    assert _error_fields(err.value) == {"rows.1.tx_amount"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_nb_tx_1day", int("9" * 401)),  # the 401-digit count: was a 500
        ("customer_nb_tx_1day", 2**24 + 1),
        ("terminal_nb_tx_30day", 2**64),
        ("tx_amount", 1e39),  # beyond float32: would score as infinity
        ("customer_avg_amount_30day", 1e308),
    ],
)
def test_values_beyond_float32_are_refused(feature_row, field, value):
    with pytest.raises(ValidationError) as err:
        Features.model_validate({**feature_row, field: value})
    assert err.value.errors()[0]["loc"] == (field,)


def test_the_largest_accepted_values_stay_finite_in_float32(feature_row):
    import numpy as np

    from fp_serving.scoring import Scorer

    big = {
        **feature_row,
        "tx_amount": FLOAT32_MAX,
        "customer_nb_tx_1day": MAX_COUNT,
        "customer_avg_amount_1day": FLOAT32_MAX,
    }
    m = Scorer.matrix([Features.model_validate(big)])
    assert np.isfinite(m).all() and m[0, 0] == np.finfo(np.float32).max and m[0, 3] == 2**24


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_nb_tx_1day", False),  # Schemathesis found booleans read as 0/1 (pydantic's lax mode)
        ("terminal_risk_7day", True),
        ("tx_during_night", True),
        ("tx_amount", "57.2"),  # a numeric string is not a number either
    ],
)
def test_booleans_and_numeric_strings_are_not_numbers(feature_row, field, value):
    with pytest.raises(ValidationError) as err:
        Features.model_validate_json(orjson.dumps({**feature_row, field: value}))
    assert err.value.errors()[0]["loc"] == (field,)
