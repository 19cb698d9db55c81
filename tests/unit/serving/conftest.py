"""Fixtures for the serving unit tests: a tiny XGBoost model trained in process (no store)."""

from __future__ import annotations

import pytest

from fp_devtools.bench.serving.synthetic_model import contract_metadata, train_booster
from fp_serving.scoring import Scorer, model_info


@pytest.fixture(scope="session")
def booster_and_params():
    booster, params, metrics = train_booster(n_rows=2_000, n_trees=10, max_depth=3, seed=1)
    return booster, params, metrics


@pytest.fixture()
def scorer(booster_and_params) -> Scorer:
    booster, params, metrics = booster_and_params
    info = model_info(
        "fraud-xgb:unit", "2026-01-01T00:00:00+00:00", contract_metadata(params, metrics, threshold=0.3), None
    )
    return Scorer(booster.copy(), info)


@pytest.fixture()
def feature_row() -> dict:
    return {
        "tx_amount": 57.2,
        "tx_during_weekend": 0,
        "tx_during_night": 1,
        "customer_nb_tx_1day": 2,
        "customer_avg_amount_1day": 40.0,
        "customer_nb_tx_7day": 9,
        "customer_avg_amount_7day": 45.1,
        "customer_nb_tx_30day": 40,
        "customer_avg_amount_30day": 50.3,
        "terminal_nb_tx_1day": 3,
        "terminal_risk_1day": 0.0,
        "terminal_nb_tx_7day": 12,
        "terminal_risk_7day": 0.5,
        "terminal_nb_tx_30day": 50,
        "terminal_risk_30day": 0.02,
    }
