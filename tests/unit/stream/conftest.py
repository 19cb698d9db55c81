"""What the stream steps' unit tests share: a small model exported as the job reads it."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import xgboost

    from fraudpipeline.features import FEATURE_NAMES
    from fraudpipeline.model import ModelMetadata, export_files

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 15)).astype(np.float32)
    y = (x[:, 0] + x[:, 3] > 1.5).astype(int)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3}, xgboost.DMatrix(x, y), 10)
    directory = tmp_path_factory.mktemp("model")
    export_files(booster, ModelMetadata(features=FEATURE_NAMES, threshold=0.5, tag="fraud-xgb:unit"), directory)
    return directory
