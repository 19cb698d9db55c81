"""Where a trained model goes: the BentoML model store, and plain XGBoost files for Flink.

The contract (docs/): `bentoml.xgboost.save_model("fraud-xgb", booster, metadata=...)` with
metadata keys features, threshold, train_window, metrics, xgboost_params; and an export of
`model.ubj` plus a `model.json` sidecar holding the same metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_NAME = "fraud-xgb"
REQUIRED_METADATA = ("features", "threshold", "train_window", "metrics", "xgboost_params")


def _check(metadata: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ValueError(f"model metadata lacks {missing}")


def save_to_bentoml(booster, metadata: dict[str, Any], name: str = MODEL_NAME) -> str:
    """Save into the store under `$BENTOML_HOME` (BentoML's default when unset); returns the tag."""
    import bentoml

    _check(metadata)
    model = bentoml.xgboost.save_model(
        name,
        booster,
        # Rows are independent, so the runner may batch them along the first axis.
        signatures={"predict": {"batchable": True, "batch_dim": 0}},
        labels={"framework": "xgboost", "trained-by": "fraudpipe-train"},
        metadata=metadata,
    )
    return str(model.tag)


def export_files(booster, metadata: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write `model.ubj` (XGBoost's binary format) and `model.json` (metadata) into `directory`."""
    import xgboost

    _check(metadata)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "model.ubj"
    booster.save_model(str(model_path))
    sidecar = {**metadata, "format": "xgboost-ubj", "model_file": model_path.name, "xgboost_version": xgboost.__version__}
    sidecar_path = directory / "model.json"
    sidecar_path.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return {"model": str(model_path), "metadata": str(sidecar_path)}


def load_export(directory: Path):
    """(booster, metadata) from an exported directory, checking the feature contract."""
    import xgboost

    from fraudpipeline.features import FEATURE_NAMES

    meta = json.loads((directory / "model.json").read_text())
    if meta.get("features") != FEATURE_NAMES:
        raise ValueError(f"{directory}/model.json: features {meta.get('features')} differ from FEATURE_NAMES")
    booster = xgboost.Booster()
    booster.load_model(str(directory / meta.get("model_file", "model.ubj")))
    return booster, meta
