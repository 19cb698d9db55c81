"""skaffold.yaml is valid for its apiVersion and builds images whose Dockerfiles can find their files."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = Path(os.environ.get("FRAUDPIPE_SKAFFOLD_SCHEMA",
                             ROOT.parent / "shared" / "schemas" / "skaffold-v4beta14.json"))


@pytest.fixture(scope="module")
def skaffold() -> dict:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def test_skaffold_yaml_matches_the_released_schema(skaffold):
    if not SCHEMA.exists():
        pytest.skip(f"skaffold's JSON schema not found at {SCHEMA}: set FRAUDPIPE_SKAFFOLD_SCHEMA")
    assert skaffold["apiVersion"] == "skaffold/v4beta14"
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(skaffold), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_every_image_is_built_and_referenced(skaffold):
    images = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert {i.rsplit("/", 1)[-1] for i in images} == {"fraudpipeline-operator", "fraudpipeline-serving",
                                                      "fraudpipeline-flink"}
    for image, art in images.items():
        assert (ROOT / art["context"] / art["docker"]["dockerfile"]).exists(), image
    # The example pipeline names the built images, so skaffold can swap in what it built.
    example = yaml.safe_load((ROOT / skaffold["manifests"]["rawYaml"][0]).read_text())
    for field in ("model", "stream"):
        assert example["spec"][field]["image"].rsplit(":", 1)[0] in images
    chart_values = yaml.safe_load((ROOT / "charts/fraudpipeline/values.yaml").read_text())
    assert chart_values["operator"]["image"]["repository"] in images


@pytest.mark.parametrize("dockerfile", ["operator/Dockerfile", "serving/Dockerfile", "flink/Dockerfile"])
def test_dockerfile_copies_only_files_that_exist(dockerfile):
    text = (ROOT / dockerfile).read_text()
    for line in re.findall(r"^COPY\s+(.+)$", text, flags=re.M):
        parts = [p for p in line.split() if not p.startswith("--")]
        for src in parts[:-1]:
            if src.startswith("build/"):
                continue  # produced by the documented build step (the exported model)
            assert glob.glob(str(ROOT / src)), f"{dockerfile}: COPY source {src} does not exist"
