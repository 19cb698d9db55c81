"""The seed-style baseline the benchmark compares against: FastAPI + XGBoost as tutorials write it.

One row per request, a synchronous handler (FastAPI runs it in its thread pool), a pydantic
input, a DMatrix per call, XGBoost's default thread count and a dict response. No batching and
none of the service's tuning. Served by `uvicorn fp_devtools.bench.serving.baseline_app:app`
(access log off, so that logging does not weigh on the comparison) with the model file named
by FRAUDPIPE_BASELINE_MODEL (the same booster the service serves).
"""

from __future__ import annotations

import os

import numpy as np
import xgboost as xgb
from fastapi import FastAPI
from pydantic import BaseModel

from fraudpipeline.features import FEATURE_NAMES

booster = xgb.Booster(model_file=os.environ.get("FRAUDPIPE_BASELINE_MODEL", "model.ubj"))
THRESHOLD = float(os.environ.get("FRAUDPIPE_BASELINE_THRESHOLD", "0.5"))

app = FastAPI(title="seed-style fraud scoring baseline")


class Transaction(BaseModel):
    tx_amount: float
    tx_during_weekend: float
    tx_during_night: float
    customer_nb_tx_1day: float
    customer_avg_amount_1day: float
    customer_nb_tx_7day: float
    customer_avg_amount_7day: float
    customer_nb_tx_30day: float
    customer_avg_amount_30day: float
    terminal_nb_tx_1day: float
    terminal_risk_1day: float
    terminal_nb_tx_7day: float
    terminal_risk_7day: float
    terminal_nb_tx_30day: float
    terminal_risk_30day: float


@app.post("/predict")
def predict(tx: Transaction) -> dict:
    row = np.array([[getattr(tx, name) for name in FEATURE_NAMES]])
    probability = float(booster.predict(xgb.DMatrix(row, feature_names=FEATURE_NAMES))[0])
    return {"fraud_probability": probability, "is_fraud": probability >= THRESHOLD}


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}
