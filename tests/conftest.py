"""Session-scoped real servers for the tests, through the same code as `fraudpipe dev up`.

Each server starts on first use and stops at the end of the session. With FRAUDPIPE_DEV_ENV
naming the env.json of servers a person already started (`fraudpipe dev up`), those are used
and left running. A missing prerequisite (java, mvn, go) skips the tests that need it, with a
message saying what to install; under CI it fails instead, so a broken machine cannot pass.
That holds for every skip, not only the servers': see ci_skip_policy.py beside this file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import ci_skip_policy
import pytest

from fp_devtools import servers
from fp_devtools.cache import MissingPrerequisite
from fp_devtools.process import ServerFailed


def pytest_configure(config):
    import ci_skip_policy

    if not config.pluginmanager.is_registered(ci_skip_policy):
        config.pluginmanager.register(ci_skip_policy, "fraudpipe-ci-skip-policy")


def pytest_addoption(parser):
    parser.addoption(
        "--with-e2e", action="store_true", default=False, help="also run the end-to-end tests (need a real cluster)"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--with-e2e"):
        return
    skip = pytest.mark.skip(reason="end-to-end test: run with --with-e2e")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


class DevServers:
    """Starts servers on demand into one state dir; remembers what it must stop."""

    def __init__(self, state_dir: Path, reuse: dict | None):
        self.state_dir = state_dir
        self.reuse = reuse
        self.started: list[str] = []
        self.failed: dict[str, str] = {}  # a server that failed to start fails every later test at once

    @property
    def env(self) -> dict:
        return self.reuse if self.reuse is not None else servers.read_env(self.state_dir)

    def get(self, name: str) -> dict:
        if self.reuse is not None:
            if name not in self.reuse:
                pytest.fail(f"FRAUDPIPE_DEV_ENV has no {name!r}: start it with `fraudpipe dev up --with {name}`")
            return self.reuse
        if name in self.failed:
            pytest.fail(self.failed[name], pytrace=False)
        if name not in self.started:
            try:
                servers.up([name], self.state_dir)
            except ServerFailed as exc:
                self.failed[name] = exc.report(name)
                pytest.fail(self.failed[name], pytrace=False)
            except MissingPrerequisite as exc:
                if ci_skip_policy.in_ci():
                    raise
                pytest.skip(f"{name} cannot start here: {exc} (`make servers` installs what it can)")
            self.started.append(name)
        return servers.read_env(self.state_dir)

    def stop(self) -> None:
        if self.reuse is None and self.started:
            servers.down(self.state_dir, self.started)


@pytest.fixture(scope="session")
def dev_servers(tmp_path_factory):
    given = os.environ.get("FRAUDPIPE_DEV_ENV")
    reuse = json.loads(Path(given).read_text()) if given else None
    mgr = DevServers(tmp_path_factory.mktemp("devservers"), reuse)
    yield mgr
    mgr.stop()


@pytest.fixture(scope="session")
def kafka(dev_servers) -> dict:
    """{"bootstrap": "127.0.0.1:P", ...} of a real KRaft broker."""
    return dev_servers.get("kafka")["kafka"]


@pytest.fixture(scope="session")
def kube(dev_servers) -> dict:
    """{"kubeconfig": path, "server": url, "controller_manager": bool, "audit_log": path, ...}."""
    return dev_servers.get("kube")["kube"]


@pytest.fixture(scope="session")
def upstream_crds(kube) -> dict:
    """The kube server, known to have the Strimzi, Flink operator and Prometheus operator CRDs."""
    if kube.get("crds_missing"):
        pytest.skip("; ".join(kube["crds_missing"]))
    return kube


@pytest.fixture(scope="session")
def kube_gc(kube) -> dict:
    """The kube server, known to run kube-controller-manager (garbage collection)."""
    if not kube.get("controller_manager"):
        pytest.skip(
            "no kube-controller-manager: KUBEBUILDER_ASSETS lacks it and Go is missing to build it; "
            "install Go 1.26+ and run `make servers` (`fraudpipe dev prepare --with kube`)"
        )
    return kube


@pytest.fixture(scope="session")
def prometheus(dev_servers) -> dict:
    """{"url": "http://127.0.0.1:P", "targets_dir": ..., "rules_dir": ...}."""
    return dev_servers.get("prometheus")["prometheus"]


@pytest.fixture(scope="session")
def tools(dev_servers) -> dict:
    """Paths of helm, kubectl (with kube) and promtool (with prometheus)."""
    dev_servers.get("kube")
    return dev_servers.get("prometheus")["tools"]


_SERVER_FIXTURES = {"kafka", "kube", "upstream_crds", "kube_gc", "prometheus", "tools", "dev_servers"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used a server shows the tail of every server log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
        mgr = item._request.getfixturevalue("dev_servers") if "dev_servers" in item.fixturenames else None
        if mgr is not None:
            report.sections.append(("dev server logs", servers.failure_report(mgr.env)))
