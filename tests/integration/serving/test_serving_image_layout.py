"""What serving/Dockerfile builds, checked without Docker: the files it copies are enough to
import the service, and the model travels by `bentoml models export/import` as documented."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "serving" / "Dockerfile"


def _copies() -> list[tuple[str, str]]:
    out = []
    for line in DOCKERFILE.read_text().splitlines():
        m = re.match(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)\s*$", line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def test_dockerfile_contract():
    text = DOCKERFILE.read_text()
    assert text.startswith("# syntax=")
    # The Python the lock was resolved for, pinned to a patch release (tests/unit/project checks pins).
    assert re.search(r"^FROM python:3\.11\.\d+-slim", text, re.M), "the base must be Python 3.11 slim, pinned"
    assert re.search(r"^USER 1000:1000$", text, re.M), "must run as the non-root uid the operator uses"
    assert "BENTOML_HOME=/home/bentoml/bentoml" in text
    assert 'CMD ["bentoml", "serve", "fp_serving.service:FraudScorer", "--host", "0.0.0.0", "--port", "3000"]' in text
    assert ("serving/requirements.txt", "/app/requirements.txt") in _copies()


def test_copied_files_import_the_service_with_an_imported_model(model_store, store_env, tmp_path):
    app = tmp_path / "app"
    for src, dst in _copies():
        if not dst.startswith("/app/") or src.endswith("requirements.txt"):
            continue
        target = app / dst.removeprefix("/app/")
        source = REPO / src
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    archive = tmp_path / "model.bentomodel"
    bentoml = [sys.executable, "-m", "bentoml"]
    done = subprocess.run(
        [*bentoml, "models", "export", model_store["tag"], str(archive)],
        env=store_env(model_store["home"]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    image_home = tmp_path / "image-home"
    env = {**store_env(image_home), "PYTHONPATH": str(app)}
    done = subprocess.run(
        [*bentoml, "models", "import", str(archive)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr

    env["FRAUDPIPE_MODEL_TAG"] = model_store["tag"]
    check = "import fp_serving.service as s, fraudpipeline.features as f; print(s.__file__); print(f.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(line.startswith(str(app)) for line in done.stdout.split()), done.stdout
