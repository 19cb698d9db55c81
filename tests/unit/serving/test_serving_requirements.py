"""serving/requirements.txt pins exactly what the lock file installs for the serving extra."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[3] / "serving" / "requirements.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;]+)(\s*;.*)?$", line.strip())
        if m and not (m.group(3) and "sys_platform == 'win32'" in m.group(3)):
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_service_dependencies_are_pinned():
    pins = _pins()
    for name in ("bentoml", "xgboost", "fastapi", "uvicorn", "prometheus-client", "orjson", "pydantic"):
        assert name in pins, f"{name} missing from serving/requirements.txt"


def test_pins_match_the_locked_environment():
    mismatched = {}
    for name, pinned in _pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # platform-specific wheels (e.g. Windows-only) are not installed here
        if installed != pinned:
            mismatched[name] = (pinned, installed)
    assert not mismatched, f"regenerate serving/requirements.txt with uv export: {mismatched}"
