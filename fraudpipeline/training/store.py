"""Where a trained model goes: the BentoML model store, and plain XGBoost files for Flink.

The contract itself (tag pattern, `ModelMetadata`, the exported files and their loader) is
`fraudpipeline.model`; this module only adds the BentoML side, used by `fraudpipe train`.
"""

from __future__ import annotations

from fraudpipeline.model import MODEL_NAME, ModelMetadata, check_tag, export_files, load_export

__all__ = ["MODEL_NAME", "export_files", "load_export", "save_to_bentoml"]


def save_to_bentoml(booster, metadata: ModelMetadata, name: str = MODEL_NAME) -> str:
    """Save into the store under `$BENTOML_HOME` (BentoML's default when unset); returns the tag."""
    import bentoml

    model = bentoml.xgboost.save_model(
        name,
        booster,
        # Rows are independent, so the runner may batch them along the first axis.
        signatures={"predict": {"batchable": True, "batch_dim": 0}},
        labels={"framework": "xgboost", "trained-by": "fraudpipe-train"},
        metadata=metadata.to_dict(),
    )
    return check_tag(str(model.tag))
