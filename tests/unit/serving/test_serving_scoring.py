"""The scorer: same numbers as XGBoost, one thread, and refusals for models it cannot serve."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
import xgboost as xgb

from fp_devtools.bench.serving.synthetic_model import contract_metadata, synthetic_features
from fp_serving.schemas import Features
from fp_serving.scoring import ModelLoadError, RowFailure, Scorer, batch_body, model_info, score_batch_rows
from fraudpipeline.features import FEATURE_NAMES


def test_probabilities_match_xgboost(scorer, booster_and_params):
    booster = booster_and_params[0]
    x = synthetic_features(64, seed=5)
    p = scorer.predict(x)
    assert p.shape == (64,)
    assert np.all((p >= 0) & (p <= 1))
    expected = booster.predict(xgb.DMatrix(x, feature_names=FEATURE_NAMES))
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-6)


def test_one_thread(scorer):
    config = json.loads(scorer.booster.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "1"


def test_matrix_follows_feature_names(feature_row):
    rows = [Features.model_validate_json(orjson.dumps({**feature_row, "tx_amount": a})) for a in (1.0, 2.0)]
    m = Scorer.matrix(rows)
    assert m.dtype == np.float32 and m.shape == (2, len(FEATURE_NAMES))
    assert m[:, 0].tolist() == [1.0, 2.0]
    assert m[0, 1:].tolist() == pytest.approx([float(feature_row[n]) for n in FEATURE_NAMES[1:]])


def test_threshold_from_the_model(scorer):
    assert scorer.threshold == 0.3


def _metadata(booster_and_params, **changes):
    _, params, metrics = booster_and_params
    return {**contract_metadata(params, metrics, threshold=0.5), **changes}


def test_threshold_override_wins(booster_and_params):
    info = model_info("fraud-xgb:v", "t", _metadata(booster_and_params), 0.8)
    assert (info.threshold, info.threshold_source) == (0.8, "env")
    info = model_info("fraud-xgb:v", "t", _metadata(booster_and_params), None)
    assert (info.threshold, info.threshold_source, info.version) == (0.5, "model", "v")


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"features": FEATURE_NAMES[::-1]}, "trained on features"),
        ({"features": FEATURE_NAMES[:-1]}, "trained on features"),
        ({"threshold": "high"}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_metadata_that_cannot_be_served_is_refused(booster_and_params, changes, needle):
    with pytest.raises(ModelLoadError, match=needle):
        model_info("fraud-xgb:v", "t", _metadata(booster_and_params, **changes), None)


def test_missing_features_metadata_is_refused(booster_and_params):
    meta = _metadata(booster_and_params)
    del meta["features"]
    with pytest.raises(ModelLoadError, match="no 'features'"):
        model_info("fraud-xgb:v", "t", meta, None)


def test_non_probability_objective_is_refused(booster_and_params):
    x = synthetic_features(200, seed=2)
    booster = xgb.train(
        {"objective": "reg:squarederror", "nthread": 1}, xgb.DMatrix(x, label=x[:, 0]), num_boost_round=2
    )
    info = model_info("fraud-xgb:v", "t", _metadata(booster_and_params), None)
    with pytest.raises(ModelLoadError, match="objective"):
        Scorer(booster, info)


def test_wrong_feature_count_is_refused(booster_and_params):
    x = synthetic_features(200, seed=2)[:, :5]
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(x, label=(x[:, 0] > 60).astype(int)),
        num_boost_round=2,
    )
    info = model_info("fraud-xgb:v", "t", _metadata(booster_and_params), None)
    with pytest.raises(ModelLoadError, match="takes 5 features"):
        Scorer(booster, info)


class PoisonedScorer:
    """Fails any model call that holds a row with tx_amount 13.0 (a stand-in for a scoring fault)."""

    version, threshold = "v", 0.5

    def __init__(self, scorer):
        self.scorer = scorer
        self.calls = 0

    def predict(self, matrix):
        self.calls += 1
        if (matrix[:, 0] == 13.0).any():
            raise OverflowError("poisoned row")
        return self.scorer.predict(matrix)


def test_a_failing_row_fails_only_the_request_it_came_from(scorer, feature_row):
    """Two requests merged into one model call: the poisoned one gets a 500, the other its scores."""
    clean = [Features.model_validate({**feature_row, "tx_amount": float(a)}) for a in (1, 2, 3)]
    poisoned = [Features.model_validate({**feature_row, "tx_amount": a}) for a in (4.0, 13.0)]
    fake = PoisonedScorer(scorer)
    results, p = score_batch_rows(fake, clean + poisoned)
    assert fake.calls == 1 + 5  # the merged call, then row by row
    first, second = results[:3], results[3:]  # the batcher hands each request its own slice
    status, body = batch_body(first)
    assert status == 200 and [r["fraud_probability"] for r in body["results"]] == pytest.approx(
        scorer.predict(Scorer.matrix(clean)).tolist()
    )
    status, body = batch_body(second)
    assert status == 500 and [d["field"] for d in body["detail"]] == ["rows.1"]
    assert isinstance(results[4], RowFailure) and "OverflowError" in results[4].message
    assert p.size == 4  # the probabilities that were computed, for the metrics


def test_a_healthy_batch_is_one_model_call(scorer, feature_row):
    rows = [Features.model_validate({**feature_row, "tx_amount": float(a)}) for a in range(5)]
    fake = PoisonedScorer(scorer)
    results, p = score_batch_rows(fake, rows)
    assert fake.calls == 1 and batch_body(results)[0] == 200 and p.shape == (5,)
