"""Fixtures of the local mode's tests: one BentoML store for the session, the prerequisites checked.

The store starts empty, so the first `fraudpipe up` of the session trains the spec's model tag
itself (the path a newcomer takes); later ones find it.
"""

from __future__ import annotations

import ci_skip_policy
import pytest
from local_helpers import local_env


@pytest.fixture(scope="session")
def local_prerequisites():
    """What `fraudpipe up` checks first; a problem skips (fails under CI) with its fix."""
    from fp_local import preflight

    problems = preflight.check_java() + preflight.check_python() + preflight.check_downloads()[0]
    if problems:
        reason = "; ".join(map(str, problems))
        if ci_skip_policy.in_ci():
            pytest.fail(f"the local mode cannot run here: {reason}")
        pytest.skip(f"the local mode cannot run here: {reason} (`make servers` installs what it can)")


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory):
    return tmp_path_factory.mktemp("local-bentoml")


@pytest.fixture(scope="session")
def env(bentoml_home, local_prerequisites):
    return local_env(bentoml_home)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used a local pipeline shows the commands it ran and the end of each log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "local" in getattr(item, "fixturenames", ()):
        try:
            report.sections.append(("fraudpipe up: commands and logs", item._request.getfixturevalue("local").tail()))
        except Exception as exc:  # noqa: BLE001 - a report hook must not fail the run
            report.sections.append(("fraudpipe up", f"(no logs: {exc})"))
