"""One model contract (fraudpipeline.model): every consumer takes and refuses the same tags, and
the metadata written by training is what serving and the streaming job read back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import xgboost as xgb
import yaml
from pydantic import ValidationError

from fp_serving.config import ServingConfigError, read_settings
from fraudpipeline.features import FEATURE_NAMES
from fraudpipeline.model import (
    MODEL_TAG_PATTERN,
    ModelContractError,
    ModelMetadata,
    check_tag,
    export_files,
    load_export,
    tag_problem,
)
from fraudpipeline.spec import ModelSpec
from fraudpipeline.training.pipeline import TrainConfig

REPO = Path(__file__).resolve().parents[3]
CRDS = [
    REPO / "crds" / "fraudpipelines.frauddetect.dev.yaml",
    REPO / "charts" / "fraudpipeline" / "crds" / "fraudpipelines.frauddetect.dev.yaml",
]

VALID = [
    "fraud-xgb:abc123",
    "fraud-xgb:q3x7kzd2",
    "a:b",
    "0:0",
    "fraud_xgb.v2:2026-11-01",
    "fraud-xgb:" + "a" * 63,
    "m" * 63 + ":v1",
]
INVALID = [
    "Fraud-XGB:ABC",
    "fraud-xgb:ABC123",
    "fraud-xgb",
    "fraud-xgb:",
    ":v1",
    "-fraud:v1",
    "fraud-:v1",
    "fraud-xgb:v1-",
    "fraud-xgb:.v1",
    "fraud xgb:v1",
    "fraud-xgb:latest",
    "a:b:c",
    "fraud-xgb:" + "a" * 64,
    "m" * 64 + ":v1",
    "fraud/xgb:v1",
    "",
]


def _crd_model_tag_schema(path: Path) -> dict:
    crd = yaml.safe_load(path.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]["properties"]["model"]["properties"]["modelTag"]


def _crd_accepts(schema: dict, tag: str) -> bool:
    try:
        jsonschema.validate(tag, {k: v for k, v in schema.items() if k in ("type", "pattern", "maxLength")})
    except jsonschema.ValidationError:
        return False
    # The CEL rules the API server evaluates, each with its Python twin in spec.py.
    rules = {r["rule"] for r in schema.get("x-kubernetes-validations", [])}
    assert rules == {"!self.endsWith(':latest')"}
    return not tag.endswith(":latest")


def _spec_accepts(tag: str) -> bool:
    try:
        ModelSpec.model_validate({"image": "registry.example/serving:1", "modelTag": tag})
    except ValidationError:
        return False
    return True


def _serving_accepts(tag: str) -> bool:
    try:
        read_settings({"FRAUDPIPE_MODEL_TAG": tag})
    except ServingConfigError as exc:
        assert "FRAUDPIPE_MODEL_TAG" in str(exc)
        return False
    return True


def _metadata_accepts(tag: str) -> bool:
    try:
        ModelMetadata(features=FEATURE_NAMES, threshold=0.5, tag=tag)
    except ValidationError:
        return False
    return True


def _train_accepts_name(tag: str) -> bool:
    from datetime import date

    try:
        TrainConfig(train_start=date(2018, 7, 25), model_name=tag.partition(":")[0])
    except ValueError:
        return False
    return True


def _stream_job_accepts(tag: str) -> bool:
    from fp_flink.config import JobConfigError, parse_args

    args = [
        "--pipeline",
        "n/p",
        "--bootstrap-servers",
        "k:9092",
        "--transactions-topic",
        "t",
        "--labels-topic",
        "l",
        "--alerts-topic",
        "a",
        "--dead-letter-topic",
        "d",
        "--group-id",
        "g",
        "--scoring-mode",
        "embedded",
        "--model-path",
        "/m",
        "--model-tag",
        tag,
    ]
    try:
        parse_args(args)
    except JobConfigError as exc:
        assert "--model-tag" in str(exc)
        return False
    return True


def _bentoml_keeps(tag: str) -> bool:
    """BentoML takes the tag as it is written (it lowercases, or refuses, anything else)."""
    from bentoml._internal.tag import Tag

    try:
        return str(Tag.from_str(tag)) == tag
    except Exception:  # noqa: BLE001 - BentoML raises several kinds
        return False


@pytest.mark.parametrize("tag", VALID + INVALID)
def test_every_consumer_takes_the_same_tags(tag):
    expected = tag in VALID
    assert (tag_problem(tag) is None) == expected
    assert _spec_accepts(tag) == expected, "FraudPipeline spec (pydantic)"
    for crd in CRDS:
        assert _crd_accepts(_crd_model_tag_schema(crd), tag) == expected, (
            f"{crd}: regenerate with `fraudpipe operator crd --write`"
        )
    assert _serving_accepts(tag) == expected, "serving image (FRAUDPIPE_MODEL_TAG)"
    assert _metadata_accepts(tag) == expected, "model.json / stored metadata"
    assert _stream_job_accepts(tag) == expected, "streaming job (--model-tag)"
    if expected:
        # What `fraudpipe train` saves under and BentoML stores: the very same string.
        assert _train_accepts_name(tag) and _bentoml_keeps(tag)
        assert check_tag(tag) == tag
    else:
        with pytest.raises(ModelContractError):
            check_tag(tag)
        # BentoML itself takes an unpinned tag (it means the newest version): refused on purpose.
        assert not _bentoml_keeps(tag) or tag in ("fraud-xgb", "fraud-xgb:latest"), "BentoML keeps it but we refuse it"


def test_the_crd_carries_the_contract_pattern():
    for crd in CRDS:
        assert _crd_model_tag_schema(crd)["pattern"] == MODEL_TAG_PATTERN
    # Go's RE2 (the API server) has no look-around or back-references: the pattern must not need them.
    assert not re.search(r"\(\?[=!<]|\\[1-9]", MODEL_TAG_PATTERN)
    # Python's `$` also matches before a final newline; RE2's and pydantic's do not, nor does the contract.
    assert tag_problem("fraud-xgb:v1\n") is not None and not _spec_accepts("fraud-xgb:v1\n")


@pytest.fixture(scope="module")
def tiny_booster():
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURE_NAMES))).astype(np.float32)
    return xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(x, label=(x[:, 0] > 0.5)), 2)


def test_export_round_trip_keeps_tag_and_metadata(tmp_path, tiny_booster):
    meta = ModelMetadata(
        features=FEATURE_NAMES,
        threshold=0.397,
        tag="fraud-xgb:abc123",
        train_window={
            "start": "2018-07-25",
            "end": "2018-07-31",
            "delay_days": 7,
            "test_start": "2018-08-08",
            "test_end": "2018-08-14",
        },
        metrics={"auc": 0.879},
        xgboost_params={"max_depth": 3},
        data="handbook",
    )
    export_files(tiny_booster, meta, tmp_path)
    booster, back = load_export(tmp_path)
    assert {k: back.to_dict()[k] for k in meta.to_dict()} == meta.to_dict()
    assert back.tag == "fraud-xgb:abc123" and back.version == "abc123" and back.threshold == 0.397
    assert back.train_window.test_end == "2018-08-14" and back.get("data") == "handbook"
    # Read access by key, as the streaming job's first version uses it.
    assert back["threshold"] == 0.397 and back.get("model_tag") == "fraud-xgb:abc123" and back.get("nope") is None
    assert booster.num_features() == len(FEATURE_NAMES)
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["tag"] == "fraud-xgb:abc123" and sidecar["format"] == "xgboost-ubj"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"features": FEATURE_NAMES[::-1]}, "trained on features"),
        ({"features": FEATURE_NAMES[:-1]}, "trained on features"),
        ({"features": None}, "no 'features'"),
        ({"threshold": None}, "no 'threshold'"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"tag": "Fraud-XGB:1"}, "not a pinned BentoML tag"),
        ({"tag": "fraud-xgb:latest"}, "floats"),
    ],
)
def test_load_export_refuses_a_broken_contract(tmp_path, tiny_booster, change, needle):
    meta = ModelMetadata(features=FEATURE_NAMES, threshold=0.5, tag="fraud-xgb:v1")
    export_files(tiny_booster, meta, tmp_path)
    raw = json.loads((tmp_path / "model.json").read_text())
    for key, value in change.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    (tmp_path / "model.json").write_text(json.dumps(raw))
    with pytest.raises(ModelContractError, match=needle):
        load_export(tmp_path)


def test_load_export_without_model_json(tmp_path):
    with pytest.raises(ModelContractError, match="fraudpipe train --export"):
        load_export(tmp_path)


def test_older_exports_with_model_tag_still_load(tmp_path, tiny_booster):
    export_files(tiny_booster, ModelMetadata(features=FEATURE_NAMES, threshold=0.5), tmp_path)
    raw = json.loads((tmp_path / "model.json").read_text())
    raw["model_tag"] = "fraud-xgb:old1"
    (tmp_path / "model.json").write_text(json.dumps(raw))
    assert load_export(tmp_path)[1].tag == "fraud-xgb:old1"
