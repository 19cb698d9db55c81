"""A stand-in fraud model trained on synthetic feature vectors, for tests and the benchmark.

It has the real model's shape (the 15 contract features, binary:logistic, the contract's
metadata keys) so the service cannot tell it from a `fraudpipe train` model; its quality means
nothing. Run as `python -m fp_devtools.bench.serving.synthetic_model` to save one into $BENTOML_HOME and print
its tag (the tests and the benchmark do this in a subprocess so their BENTOML_HOME stays apart).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from fraudpipeline.features import FEATURE_NAMES

MODEL_NAME = "fraud-xgb"


def synthetic_features(n: int, seed: int = 0) -> np.ndarray:
    """Plausible feature vectors (float32, FEATURE_NAMES order): amounts, flags, counts, ratios."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    cols["tx_amount"] = rng.gamma(2.0, 30.0, n)
    cols["tx_during_weekend"] = (rng.random(n) < 2 / 7).astype(float)
    cols["tx_during_night"] = (rng.random(n) < 0.25).astype(float)
    for w in (1, 7, 30):
        cols[f"customer_nb_tx_{w}day"] = rng.poisson(2.0 * w, n) + 1.0
        cols[f"customer_avg_amount_{w}day"] = rng.gamma(2.0, 30.0, n)
        cols[f"terminal_nb_tx_{w}day"] = rng.poisson(1.5 * w, n).astype(float)
        cols[f"terminal_risk_{w}day"] = np.where(rng.random(n) < 0.05, rng.random(n), 0.0)
    return np.column_stack([cols[name] for name in FEATURE_NAMES]).astype(np.float32)


def synthetic_labels(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fraud is likelier for large amounts against the customer's mean and risky terminals."""
    rng = np.random.default_rng(seed + 1)
    idx = {name: i for i, name in enumerate(FEATURE_NAMES)}
    ratio = x[:, idx["tx_amount"]] / (x[:, idx["customer_avg_amount_30day"]] + 1.0)
    logit = -4.0 + 1.2 * ratio + 6.0 * x[:, idx["terminal_risk_7day"]]
    return (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(np.int32)


def train_booster(n_rows: int = 5_000, n_trees: int = 20, max_depth: int = 4, seed: int = 0):
    import xgboost as xgb

    x = synthetic_features(n_rows, seed)
    y = synthetic_labels(x, seed)
    params = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_depth": max_depth,
        "eta": 0.3,
        "nthread": 1,
        "seed": seed,
    }
    dtrain = xgb.DMatrix(x, label=y, feature_names=list(FEATURE_NAMES))
    booster = xgb.train(params, dtrain, num_boost_round=n_trees)
    x_test = synthetic_features(n_rows, seed + 100)
    y_test = synthetic_labels(x_test, seed + 100)
    metrics = ranking_metrics(y_test, booster.inplace_predict(x_test))
    return booster, params, metrics


def ranking_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC (rank statistic, ties averaged) and average precision, with numpy only."""
    from scipy.stats import rankdata  # xgboost depends on scipy already

    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(p)
    auc = (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    order = np.argsort(-p, kind="stable")
    hits = pos[order]
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return {"auc": float(auc), "ap": float(precision_at_hit.mean())}


def contract_metadata(params: dict[str, Any], metrics: dict[str, float], threshold: float = 0.5) -> dict[str, Any]:
    """Metadata with the contract's keys; the metrics are on synthetic hold-out data."""
    return {
        "features": list(FEATURE_NAMES),
        "threshold": threshold,
        "train_window": {
            "start": "synthetic",
            "end": "synthetic",
            "delay_days": 7,
            "test_start": "synthetic",
            "test_end": "synthetic",
        },
        "metrics": {**metrics, "note": "synthetic data: figures say nothing about fraud"},
        "xgboost_params": params,
        "synthetic": True,
    }


def save_synthetic_model(
    n_trees: int = 20,
    max_depth: int = 4,
    threshold: float = 0.5,
    seed: int = 0,
    export_path: str | None = None,
) -> str:
    """Train and save into the BentoML store of this process ($BENTOML_HOME); return the tag.

    With `export_path`, also write the booster as a plain XGBoost file (to check scores with).
    """
    import bentoml

    booster, params, metrics = train_booster(n_trees=n_trees, max_depth=max_depth, seed=seed)
    if export_path:
        booster.save_model(export_path)
    model = bentoml.xgboost.save_model(
        MODEL_NAME,
        booster,
        metadata=contract_metadata(params, metrics, threshold),
        labels={"synthetic": "true"},
    )
    return str(model.tag)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--export", help="also write the booster to this .ubj/.json file")
    args = parser.parse_args(argv)
    tag = save_synthetic_model(args.trees, args.depth, args.threshold, args.seed, args.export)
    print(json.dumps({"tag": tag}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
