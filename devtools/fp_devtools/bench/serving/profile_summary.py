"""Condense a py-spy raw profile ("frame;frame;... count" lines) into where the time went.

Expects `py-spy record --full-filenames`, so each frame's file says which package it is in.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

# First match wins: the component a sample's innermost frame belongs to.
CATEGORIES = (
    ("xgboost", ("xgboost/",)),
    ("numpy", ("numpy/",)),
    ("pydantic", ("pydantic",)),
    ("opentelemetry", ("opentelemetry/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("fp_serving", ("fp_serving/",)),
    ("bentoml", ("bentoml/", "_bentoml_impl/", "_bentoml_sdk/", "simple_di/")),
    ("starlette/fastapi", ("starlette/", "fastapi/", "anyio/")),
    ("uvicorn/httptools", ("uvicorn/", "httptools")),
    ("stdlib (asyncio, json, inspect...)", ("/lib/python3", "<frozen")),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _category(frame: str) -> str:
    for name, needles in CATEGORIES:
        if any(n in frame for n in needles) and not (name.startswith("stdlib") and "site-packages" in frame):
            return name
    return "other packages" if "site-packages" in frame else "other"


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "fp_serving/"):
        if marker in path:
            path = (marker if marker == "fp_serving/" else "") + path.split(marker, 1)[1]
    return f"{m.group('func')} ({path})"


def summarize_raw(text: str, top: int = 8) -> dict[str, Any]:
    by_category: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        line = line.strip()
        if not line or " " not in line:
            continue
        stack, _, count = line.rpartition(" ")
        try:
            n = int(count)
        except ValueError:
            continue
        leaf = stack.split(";")[-1]
        by_category[_category(leaf)] += n
        by_frame[_short(leaf)] += n
        total += n
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "self_time_pct_by_component": {k: round(100 * v / total, 1) for k, v in by_category.most_common()},
        "top_self_frames_pct": {k: round(100 * v / total, 1) for k, v in by_frame.most_common(top)},
    }
