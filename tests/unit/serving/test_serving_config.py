"""Serving settings: the contract's environment variables, and clear errors naming the fix."""

from __future__ import annotations

import pytest

from fp_serving.config import ServingConfigError, read_settings, read_workers


def test_defaults_and_values():
    s = read_settings({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:abc123"})
    assert (s.model_tag, s.threshold_override, s.workers) == ("fraud-xgb:abc123", None, 1)
    s = read_settings({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:v1", "FRAUDPIPE_THRESHOLD": "0.25", "FRAUDPIPE_WORKERS": "2"})
    assert (s.threshold_override, s.workers) == (0.25, 2)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["FRAUDPIPE_MODEL_TAG", "is not set", "fraud-xgb:"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb"}, ["FRAUDPIPE_MODEL_TAG", "name:version"]),
        ({"FRAUDPIPE_MODEL_TAG": "Fraud XGB:1"}, ["FRAUDPIPE_MODEL_TAG"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:latest"}, ["pin the version"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:v1", "FRAUDPIPE_THRESHOLD": "1.5"}, ["FRAUDPIPE_THRESHOLD", "[0, 1]"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:v1", "FRAUDPIPE_THRESHOLD": "high"}, ["FRAUDPIPE_THRESHOLD"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:v1", "FRAUDPIPE_THRESHOLD": "nan"}, ["FRAUDPIPE_THRESHOLD"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:v1", "FRAUDPIPE_WORKERS": "0"}, ["FRAUDPIPE_WORKERS"]),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:v1", "FRAUDPIPE_WORKERS": "two"}, ["FRAUDPIPE_WORKERS"]),
    ],
)
def test_bad_settings_name_the_variable(env, names):
    with pytest.raises(ServingConfigError) as err:
        read_settings(env)
    for name in names:
        assert name in str(err.value)


def test_workers_default_is_one():
    assert read_workers({}) == 1
    assert read_workers({"FRAUDPIPE_WORKERS": " 3 "}) == 3
