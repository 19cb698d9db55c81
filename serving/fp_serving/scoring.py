"""The model behind the API: load "fraud-xgb:<version>" from the BentoML store and score.

Loading refuses, with a message saying what to do, any model the service cannot serve
correctly: not in the store, not XGBoost, trained on other features, not a probability
output, or without a usable threshold.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Any

import numpy as np

from fp_serving.config import THRESHOLD_ENV, ServingSettings
from fp_serving.schemas import Features, ModelInfo, feature_values
from fraudpipeline.features import FEATURE_NAMES
from fraudpipeline.model import ModelContractError, ModelMetadata

logger = logging.getLogger("fp_serving")
N_FEATURES = len(FEATURE_NAMES)
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")


class ModelLoadError(RuntimeError):
    """The configured model cannot be served; the message says why and what to do."""


class Scorer:
    """An XGBoost booster with its decision threshold and version; pure (no metrics, no I/O)."""

    def __init__(self, booster: Any, info: ModelInfo) -> None:
        # One thread per worker: XGBoost's default (all cores) leaves an OpenMP thread spinning
        # after every call, which costs more than it saves at these sizes (serving-measured.md).
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.info = info
        self.threshold = info.threshold
        self.version = info.version
        objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
        if objective not in PROBABILITY_OBJECTIVES:
            raise ModelLoadError(
                f"model {info.tag} has objective {objective!r}, which does not output a "
                f"probability: train it with one of {', '.join(PROBABILITY_OBJECTIVES)}"
            )
        if booster.num_features() != N_FEATURES:
            raise ModelLoadError(
                f"model {info.tag} takes {booster.num_features()} features, the contract has "
                f"{N_FEATURES}: retrain it on fraudpipeline.features.FEATURE_NAMES"
            )
        # The first calls allocate XGBoost's predictor caches; pay for them before serving.
        for n in (1, 256):
            self.predict(np.zeros((n, N_FEATURES), dtype=np.float32))

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probabilities for an (n, 15) float32 matrix in FEATURE_NAMES order."""
        return self.booster.inplace_predict(matrix, validate_features=False)

    @staticmethod
    def matrix(rows: list[Features]) -> np.ndarray:
        n = len(rows)
        flat = itertools.chain.from_iterable(map(feature_values, rows))
        return np.fromiter(flat, dtype=np.float32, count=n * N_FEATURES).reshape(n, N_FEATURES)


def model_info(tag: str, created_at: str, metadata: dict[str, Any], override: float | None) -> ModelInfo:
    """Check the metadata against the model contract (fraudpipeline.model) and describe it for /v1/model."""
    if override is not None:  # FRAUDPIPE_THRESHOLD wins over (and stands in for) the stored one
        metadata = {**metadata, "threshold": override}
    try:
        meta = ModelMetadata.from_mapping(metadata, f"model {tag}")
    except ModelContractError as exc:
        hint = f", or set {THRESHOLD_ENV} to a number in [0, 1]" if "threshold" in str(exc) else ""
        raise ModelLoadError(f"{exc}{hint}") from None
    name, _, version = tag.partition(":")
    threshold, source = (override, "env") if override is not None else (meta.threshold, "model")
    return ModelInfo(
        tag=tag,
        name=name,
        version=version,
        features=list(meta.features),
        threshold=threshold,
        threshold_source=source,
        metrics=dict(meta.metrics),
        train_window=meta.train_window.model_dump() if meta.train_window else {},
        xgboost_params=dict(meta.xgboost_params),
        created_at=created_at,
        synthetic=bool(meta.get("synthetic", False)),
    )


def _stored_model(settings: ServingSettings) -> tuple[Any, ModelInfo]:
    import bentoml
    from bentoml.exceptions import NotFound

    tag = settings.model_tag
    home = os.environ.get("BENTOML_HOME", "~/bentoml")
    try:
        model = bentoml.models.get(tag)
    except NotFound:
        raise ModelLoadError(
            f"model {tag} is not in the BentoML model store at {home} (BENTOML_HOME): train one "
            "with `fraudpipe train` or import it with `bentoml models import`, and list what is "
            "there with `bentoml models list`"
        ) from None
    if model.info.module != "bentoml.xgboost":
        raise ModelLoadError(
            f"model {tag} was saved with {model.info.module}, not bentoml.xgboost: save it with "
            "bentoml.xgboost.save_model (as `fraudpipe train` does)"
        )
    info = model_info(
        str(model.tag),
        model.info.creation_time.isoformat(),
        dict(model.info.metadata),
        settings.threshold_override,
    )
    return model, info


def check_model(settings: ServingSettings) -> ModelInfo:
    """The start-up check, without loading the booster: the model is there and fits."""
    return _stored_model(settings)[1]


def load_scorer(settings: ServingSettings) -> Scorer:
    """Load the configured model from the BentoML store ($BENTOML_HOME)."""
    import bentoml
    import xgboost as xgb

    model, info = _stored_model(settings)
    loaded = bentoml.xgboost.load_model(model)
    booster = loaded.get_booster() if isinstance(loaded, xgb.XGBModel) else loaded
    return Scorer(booster, info)


class RowFailure:
    """Stands in the batch output for a row that could not be scored (a server fault).

    The adaptive batcher hands each merged request its own slice of the output, so a failure
    stays with the request its row came from (`batch_body` answers that one 500).
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def score_batch_rows(scorer: Scorer, rows: list[Features]) -> tuple[list[dict[str, Any] | RowFailure], np.ndarray]:
    """Results for the merged rows of several requests, and the probabilities that were computed.

    One model call for all rows; if it fails, each row is scored alone so that only the rows
    that fail are marked (never the other requests merged into the same call).
    """
    version, threshold = scorer.version, scorer.threshold
    try:
        p = scorer.predict(Scorer.matrix(rows))
    except Exception:
        logger.exception("scoring %d merged rows failed: scoring them one by one", len(rows))
    else:
        return [
            {"fraud_probability": prob, "is_fraud": prob >= threshold, "model_version": version} for prob in p.tolist()
        ], p
    results: list[dict[str, Any] | RowFailure] = []
    scored: list[float] = []
    for row in rows:
        try:
            prob = float(scorer.predict(Scorer.matrix([row]))[0])
        except Exception as exc:
            logger.exception("a row could not be scored")
            results.append(RowFailure(f"could not be scored ({type(exc).__name__}); the server log has the cause"))
            continue
        scored.append(prob)
        results.append({"fraud_probability": prob, "is_fraud": prob >= threshold, "model_version": version})
    return results, np.asarray(scored, dtype=np.float32)


def batch_body(results: list[dict[str, Any] | RowFailure]) -> tuple[int, dict[str, Any]]:
    """(status, body) for one request's slice of a batch: 200, or 500 naming its failed rows."""
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, RowFailure)]
    if not failed:
        return 200, {"results": results}
    return 500, {
        "error": f"{len(failed)} of {len(results)} row(s) could not be scored: a server fault, not the input",
        "detail": [{"field": f"rows.{i}", "message": r.message, "type": "scoring_failed"} for i, r in failed],
    }
