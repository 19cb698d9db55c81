"""The model contract, defined once: the tag pattern, the typed metadata, the exported files.

Every component that names or loads a model goes through here: the FraudPipeline CRD
(`spec.MODEL_TAG`, generated into `crds/`), `fraudpipe train` (the BentoML store and the
`--export` directory), the serving image (`FRAUDPIPE_MODEL_TAG`, the stored metadata) and the
streaming job (`load_export`). No heavy imports at module level: xgboost is loaded by
`load_export` only, bentoml never.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fraudpipeline.features import FEATURE_NAMES

MODEL_NAME = "fraud-xgb"

# BentoML's own rule for each part of name:version (bentoml/_internal/tag.py): lowercase
# letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 63
# characters. BentoML lowercases what it is given, so an uppercase tag would name another model
# than the one written in the FraudPipeline: refused everywhere instead.
_PART = r"[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?"
MODEL_TAG_PATTERN = rf"^{_PART}:{_PART}$"
MODEL_TAG_MAX_LENGTH = 127
MODEL_TAG_EXAMPLE = "fraud-xgb:q3x7kzd2"
_TAG_RE = re.compile(MODEL_TAG_PATTERN)

EXPORT_MODEL_FILE = "model.ubj"
EXPORT_METADATA_FILE = "model.json"


class ModelContractError(ValueError):
    """A tag or a model's metadata that breaks the contract; the message says what to do."""


def tag_problem(tag: str) -> str | None:
    """Why `tag` is not a pinned model tag, or None if it is one."""
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):  # fullmatch: Python's $ passes a final newline
        return (
            f"{tag!r} is not a pinned BentoML tag: use name:version, e.g. {MODEL_TAG_EXAMPLE}, each part "
            "1-63 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
        )
    if tag.endswith(":latest"):
        return (
            f"{tag!r} floats: pin the version (e.g. {MODEL_TAG_EXAMPLE}) so that a redeploy cannot "
            "silently change the model"
        )
    return None


def check_tag(tag: str) -> str:
    """`tag` if it is a pinned model tag, else ModelContractError saying why."""
    problem = tag_problem(tag)
    if problem:
        raise ModelContractError(problem)
    return tag


def split_tag(tag: str) -> tuple[str, str]:
    """(name, version) of a checked tag."""
    name, _, version = check_tag(tag).partition(":")
    return name, version


class TrainWindow(BaseModel):
    """The handbook split a model was trained and tested on (ISO dates, inclusive)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    start: str
    end: str
    delay_days: int
    test_start: str
    test_end: str


class ModelMetadata(BaseModel):
    """What travels with a trained model: in the BentoML store's metadata and in `model.json`.

    `features` must equal `FEATURE_NAMES` (checked by `from_mapping`); `threshold` is the
    decision threshold on P(fraud); `tag` is the BentoML tag once saved. Keys beyond these
    (`data`, `validation_folds`, `synthetic`, the export's `format`...) are kept as they are.
    Read access by key (`meta["threshold"]`, `meta.get("tag")`) works too, for code written
    against the plain dict.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    features: list[str] = Field(description="The model's inputs, in order: FEATURE_NAMES.")
    threshold: float = Field(ge=0.0, le=1.0, description="Decision threshold on P(fraud).")
    train_window: TrainWindow | None = Field(None, description="Training and test windows.")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Test-window figures (auc, ap, cp100, ...).")
    xgboost_params: dict[str, Any] = Field(default_factory=dict, description="XGBoost parameters and rounds.")
    tag: str | None = Field(None, description="BentoML tag, name:version, once saved.")

    @field_validator("threshold", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number in [0, 1], not a boolean")
        return value

    @field_validator("tag")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        if value is not None:
            problem = tag_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> ModelMetadata:
        """Parse stored metadata (`model.json`, BentoML's); `source` names it in the errors.

        Refuses a feature list other than FEATURE_NAMES: a model trained on other features
        would score silently wrong.
        """
        values = dict(data)
        if "tag" not in values and values.get("model_tag"):  # the export's older key
            values["tag"] = values.pop("model_tag")
        features = values.get("features")
        if features is None:
            raise ModelContractError(
                f"{source} has no 'features': save the model with `fraudpipe train`, which "
                "records the feature list it was trained on"
            )
        if list(features) != FEATURE_NAMES:
            raise ModelContractError(
                f"{source} was trained on features {list(features)} but this code computes "
                f"{FEATURE_NAMES}: retrain the model with the current fraudpipeline.features"
            )
        if "threshold" not in values:
            raise ModelContractError(f"{source} has no 'threshold': retrain it with `fraudpipe train`")
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"'{'.'.join(str(p) for p in e['loc'])}' {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
            )
            raise ModelContractError(f"{source}: {problems}: retrain it with `fraudpipe train`") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the BentoML metadata, model.json); `tag` left out while unknown."""
        out = self.model_dump(mode="json", exclude_none=True)
        return out

    @property
    def version(self) -> str | None:
        return self.tag.partition(":")[2] if self.tag else None

    # Read access by key, for code written against the plain metadata dict.
    def __getitem__(self, key: str) -> Any:
        if key == "model_tag":
            key = "tag"
        data = self.model_dump(mode="json")
        if key not in data:
            raise KeyError(key)
        return data[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


def export_files(booster: Any, metadata: ModelMetadata, directory: Path) -> dict[str, str]:
    """Write `model.ubj` (XGBoost's binary format) and `model.json` (the metadata) into `directory`."""
    import xgboost

    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / EXPORT_MODEL_FILE
    booster.save_model(str(model_path))
    sidecar = {
        **metadata.to_dict(),
        "format": "xgboost-ubj",
        "model_file": model_path.name,
        "xgboost_version": xgboost.__version__,
    }
    sidecar_path = directory / EXPORT_METADATA_FILE
    sidecar_path.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return {"model": str(model_path), "metadata": str(sidecar_path)}


def load_export(directory: Path | str) -> tuple[Any, ModelMetadata]:
    """(xgboost.Booster, ModelMetadata) from a `fraudpipe train --export` directory; no bentoml.

    Refuses a directory without `model.json`, metadata that breaks the contract (a feature list
    other than FEATURE_NAMES, no threshold, a floating tag) and a booster whose input count
    differs from the feature list.
    """
    import xgboost

    directory = Path(directory)
    sidecar = directory / EXPORT_METADATA_FILE
    if not sidecar.exists():
        raise ModelContractError(f"{sidecar} not found: export a model with `fraudpipe train --export {directory}`")
    try:
        raw = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise ModelContractError(f"{sidecar} is not JSON ({exc}): export the model again") from None
    meta = ModelMetadata.from_mapping(raw, str(sidecar))
    booster = xgboost.Booster()
    booster.load_model(str(directory / str(raw.get("model_file", EXPORT_MODEL_FILE))))
    if booster.num_features() != len(FEATURE_NAMES):
        raise ModelContractError(
            f"{directory}: the booster takes {booster.num_features()} features, the contract "
            f"has {len(FEATURE_NAMES)}: export the model again"
        )
    return booster, meta
