"""Fixtures for the operator's unit tests: example pipelines as the API server would return them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from fraudpipeline.spec import FraudPipeline, parse_pipeline

REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).with_name("golden")
UID = "00000000-0000-4000-8000-000000000001"
# Golden files change only when asked: FRAUDPIPE_UPDATE_GOLDEN=1 pytest tests/unit/operator
UPDATE_GOLDEN = os.environ.get("FRAUDPIPE_UPDATE_GOLDEN") == "1"


def example(name: str, **spec_overrides) -> FraudPipeline:
    doc = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
    doc["metadata"]["uid"] = UID
    doc["metadata"]["generation"] = 1
    for dotted, value in spec_overrides.items():
        node = doc["spec"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return parse_pipeline(doc)


@pytest.fixture
def minimal() -> FraudPipeline:
    return example("minimal")


@pytest.fixture
def full() -> FraudPipeline:
    return example("full")


def check_golden(name: str, docs: list[dict]) -> None:
    """Compare `docs` with golden/<name>.yaml; rewrite it only when FRAUDPIPE_UPDATE_GOLDEN=1."""
    path = GOLDEN / f"{name}.yaml"
    text = yaml.safe_dump_all(docs, sort_keys=False, width=120)
    if UPDATE_GOLDEN:
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: review the output and create it with FRAUDPIPE_UPDATE_GOLDEN=1")
    expected = list(yaml.safe_load_all(path.read_text()))
    assert docs == expected, (
        f"children differ from {path.name}; if the change is intended, regenerate with "
        f"FRAUDPIPE_UPDATE_GOLDEN=1 and review the diff"
    )
