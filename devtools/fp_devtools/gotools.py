"""Go tools the tests use, built once from the Go module proxy into the cache (like helm).

- skaffold v2.19.0: `skaffold diagnose --yaml-only` and `skaffold render --offline` on every
  profile of skaffold.yaml (tests/unit/project/test_skaffold.py);
- Grafana's dashboard-linter: the operator's dashboard must pass `lint --strict`
  (tests/unit/operator/test_monitoring.py).

Neither can be `go install`ed from the proxy here (see the scripts); each script checks the
module's hash against the one pinned below before building it.
"""

from __future__ import annotations

from pathlib import Path

from fp_devtools import cache
from fp_devtools.builds import SCRIPTS, _build_once

SKAFFOLD_VERSION = "2.19.0"
SKAFFOLD_SUM = "h1:qH0CVdT2qAT3PNCfbBXb8Rhb6H5tuWEyQOwK9VaePsE="
# No release tags: the newest pseudo-version the proxy serves (commit of 2024-12-24).
DASHBOARD_LINTER_VERSION = "v0.0.0-20241224134444-1765d94aec4a"
DASHBOARD_LINTER_SUM = "h1:wpyAYX8+Rqu0LIEE7zXBR/qjBH4t0yXvqlRGa1wD5rg="


def skaffold_binary() -> Path:
    out = cache.cache_dir("skaffold", f"v{SKAFFOLD_VERSION}")
    work = cache.cache_root() / "work" / "skaffold"
    return (
        _build_once(
            "skaffold",
            out,
            ["skaffold"],
            f"skaffold v{SKAFFOLD_VERSION}",
            ["bash", str(SCRIPTS / "build-skaffold.sh"), SKAFFOLD_VERSION, SKAFFOLD_SUM, str(out), str(work)],
        )
        / "skaffold"
    )


def dashboard_linter_binary() -> Path:
    out = cache.cache_dir("dashboard-linter", DASHBOARD_LINTER_VERSION)
    work = cache.cache_root() / "work" / "dashboard-linter"
    return (
        _build_once(
            "dashboard-linter",
            out,
            ["dashboard-linter"],
            f"Grafana dashboard-linter {DASHBOARD_LINTER_VERSION}",
            [
                "bash",
                str(SCRIPTS / "build-dashboard-linter.sh"),
                DASHBOARD_LINTER_VERSION,
                DASHBOARD_LINTER_SUM,
                str(out),
                str(work),
            ],
        )
        / "dashboard-linter"
    )


def cached(name: str) -> Path | None:
    """The binary if it is built already (no build started), for a test's quick check."""
    version = {"skaffold": f"v{SKAFFOLD_VERSION}", "dashboard-linter": DASHBOARD_LINTER_VERSION}[name]
    path = cache.cache_root() / name / version / name
    return path if path.exists() else None
