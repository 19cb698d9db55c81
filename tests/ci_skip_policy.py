"""Under CI a skipped test is a failure, unless what it needs is outside `make test`'s reach.

`make test` installs the locked environment and builds or downloads every server and tool
(Kafka, the Kubernetes control plane, helm, Prometheus, promtool). A test that skips because
one of those is missing would let a broken machine pass green, so under `CI=true` (or any value
but 0/false) its skip becomes a failure whose message names what was missing. Outside CI it
stays a skip, and its message names the command that installs the prerequisite.

Allowed skips, even under CI, name what `make test` does not provide: the opt-in end-to-end
tier (`--with-e2e`: Docker and kind) and the read-only `../shared` folder beside the clone
(`FRAUDPIPE_DATA`, `FRAUDPIPE_UPSTREAM_CRDS`, `FRAUDPIPE_SKAFFOLD_SCHEMA`, `FRAUDPIPE_BRIDGE_OPENAPI`).

Loaded by tests/conftest.py (`pytest_configure`); a plugin module of its own so that a test can
run it on a throw-away suite (tests/unit/project/test_ci_skip_policy.py).
"""

from __future__ import annotations

import os

import pytest

ALLOWED_UNDER_CI = (
    "--with-e2e",
    "FRAUDPIPE_DATA",
    "FRAUDPIPE_UPSTREAM_CRDS",
    "FRAUDPIPE_SKAFFOLD_SCHEMA",
    "FRAUDPIPE_BRIDGE_OPENAPI",
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_if_not_allowed(report) -> None:
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    reason = _reason(report)
    if any(tag in reason for tag in ALLOWED_UNDER_CI):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI, where `make test` must have installed what this test needs: {reason}\n"
        f"(a skip is only allowed under CI when its reason names one of {', '.join(ALLOWED_UNDER_CI)})"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_if_not_allowed(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_if_not_allowed(outcome.get_result())
