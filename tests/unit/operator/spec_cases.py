"""The invalid-spec table (invalid_specs.yaml), applied to examples/minimal.yaml."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def minimal_doc() -> dict:
    return yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())


def invalid_cases() -> list[dict]:
    return yaml.safe_load((HERE / "invalid_specs.yaml").read_text())


def apply_case(doc: dict, case: dict) -> dict:
    doc = copy.deepcopy(doc)
    for dotted, value in case["set"].items():
        root = doc if dotted.startswith("metadata.") else doc["spec"]
        *parents, leaf = dotted.split(".") if not dotted.startswith("metadata.") else dotted.split(".")
        node = root
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc
