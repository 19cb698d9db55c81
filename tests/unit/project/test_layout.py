"""Project-level invariants: image pins follow the lock, no package shadows the standard library."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ["operator", "serving", "flink"]


def _locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("image", IMAGES)
def test_image_requirements_are_pinned_to_the_lock(image):
    req = ROOT / image / "requirements.txt"
    if not req.exists():
        pytest.skip(f"{image}/requirements.txt not written yet")
    locked = {_norm(k): v for k, v in _locked_versions().items()}
    pins = {}
    for line in req.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        assert m, f"{image}/requirements.txt: '{line}' is not pinned with =="
        pins[_norm(m.group(1))] = m.group(3)
    drift = {n: (v, locked.get(n)) for n, v in pins.items() if locked.get(n) != v}
    assert not drift, f"{image}/requirements.txt disagrees with uv.lock (run `make requirements`): {drift}"


def test_no_python_package_is_named_operator():
    assert not (ROOT / "operator" / "__init__.py").exists()
    import operator

    assert operator.__file__ and "site-packages" not in operator.__file__ and str(ROOT) not in operator.__file__
