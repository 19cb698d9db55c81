"""The operator against a real kube-apiserver (+ etcd + kube-controller-manager) with the upstream
Strimzi, Flink operator and Prometheus operator CRDs. The operator runs as `fraudpipe operator run`
in a subprocess, as its own ServiceAccount bound to the chart's ClusterRole."""

from __future__ import annotations

import uuid

import pytest

from fp_devtools.bench.operator_harness import AuditLog, Cluster, OperatorProcess, operator_identity, wait_for


@pytest.fixture(scope="session")
def cluster(upstream_crds) -> Cluster:
    c = Cluster(upstream_crds)
    c.install_crd()
    return c


@pytest.fixture(scope="session")
def identity(cluster, dev_servers, tmp_path_factory):
    helm = (dev_servers.env.get("tools") or {}).get("helm")
    ident = operator_identity(cluster, helm, tmp_path_factory.mktemp("operator-identity"))
    if ident.username == "admin":
        pytest.skip(f"cannot run the operator with the chart's RBAC: {ident.rbac}")
    return ident


@pytest.fixture(scope="session")
def operator(identity, tmp_path_factory):
    op = OperatorProcess(identity.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    yield op
    op.stop()


@pytest.fixture
def audit(upstream_crds) -> AuditLog:
    return AuditLog(upstream_crds["audit_log"])


def _fresh(cluster: Cluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.ensure_namespace(name)
    return name


@pytest.fixture
def namespace(cluster, operator):
    """A fresh namespace, deleted (and waited for, so no cleanup spills into the next test) after."""
    made = []

    def make(prefix: str = "fp") -> str:
        made.append(_fresh(cluster, prefix))
        return made[-1]

    yield make
    for ns in made:
        cluster.delete("v1", "Namespace", None, ns)
    for ns in made:
        wait_for(
            lambda ns=ns: cluster.get("v1", "Namespace", None, ns) is None,
            90,
            f"namespace {ns} to be deleted (FraudPipeline finalizers need the operator)",
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing operator test shows the operator's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "operator" in getattr(item, "fixturenames", ()):
        op = item.funcargs.get("operator")
        if op is not None:
            report.sections.append(("operator log", op.tail(80)))
