"""The alert rules and the dashboard: valid PromQL, promtool unit tests for every alert, runbook
sections, Grafana's dashboard linter, and only metric names the components really export.

Whether those metrics carry data with the labels the queries use is the whole-pipeline test's
(tests/integration/observability/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import ci_skip_policy
import pytest
import yaml
from conftest import example

from fp_operator.builders.monitoring import (
    alert_rules,
    alerts,
    build_dashboard_configmap,
    build_prometheus_rule,
    dashboard,
    dashboard_queries,
)

REPO = Path(__file__).resolve().parents[3]
ALERTS_DIR = Path(__file__).with_name("alerts")
RULES_FILE = ALERTS_DIR / "rules.yaml"
RULES_HEADER = (
    "# Generated from examples/full.yaml by the operator's builder (FRAUDPIPE_UPDATE_GOLDEN=1 rewrites it).\n"
)

# Metric names as exported, each seen on the running component (tests/integration/observability).
FLINK_METRICS = {
    "flink_taskmanager_job_task_operator_fraudpipe_scored",
    "flink_taskmanager_job_task_operator_fraudpipe_alerts",
    "flink_taskmanager_job_task_operator_fraudpipe_dead_letters",
    "flink_taskmanager_job_task_operator_fraudpipe_refused",
    "flink_taskmanager_job_task_operator_fraudpipe_scoring_latency_ms",
    "flink_taskmanager_job_task_operator_pendingRecords",
    "flink_jobmanager_numRunningJobs",
    "flink_jobmanager_job_numberOfFailedCheckpoints",
    "flink_jobmanager_job_numberOfCompletedCheckpoints",
    "flink_jobmanager_job_lastCheckpointDuration",
}
KUBE_STATE_METRICS = {
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_status_current_replicas",
}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def _promtool() -> str:
    given = os.environ.get("FRAUDPIPE_PROMETHEUS_DIR")
    if given and Path(given, "promtool").exists():
        return str(Path(given, "promtool"))
    if shutil.which("promtool"):
        return shutil.which("promtool")
    try:
        from fp_devtools.prometheus import _extracted

        found = _extracted()
    except Exception:  # noqa: BLE001 - no dev tooling here
        found = None
    if not found:
        pytest.skip("promtool not found: `fraudpipe dev prepare --with prometheus` or set FRAUDPIPE_PROMETHEUS_DIR")
    return str(found / "promtool")


def check_rules(tmp_path: Path, groups: list[dict]) -> None:
    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump({"groups": groups}))
    r = subprocess.run([_promtool(), "check", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _rules_text() -> str:
    groups = [{"name": "fraudpipeline.fraud.cards-eu", "rules": alert_rules(example("full"))}]
    return RULES_HEADER + yaml.safe_dump({"groups": groups}, sort_keys=False, width=200)


def test_alert_rules_pass_promtool(tmp_path):
    rule = build_prometheus_rule(example("full"))
    check_rules(tmp_path, rule["spec"]["groups"])
    names = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert len(names) == len(set(names)) and all(a.startswith("FraudPipeline") for a in names)


def test_the_rules_file_beside_the_promtool_tests_is_current():
    """tests/unit/operator/alerts/rules.yaml is what the builder generates for examples/full.yaml."""
    if os.environ.get("FRAUDPIPE_UPDATE_GOLDEN"):
        RULES_FILE.write_text(_rules_text())
    assert RULES_FILE.read_text() == _rules_text(), (
        "the alert rules changed: regenerate alerts/rules.yaml with FRAUDPIPE_UPDATE_GOLDEN=1, review "
        "the diff, and update the *_test.yaml beside it"
    )


def test_every_alert_has_a_promtool_test_that_fires_it_and_one_that_does_not():
    for alert in alerts(example("full")):
        path = ALERTS_DIR / f"{alert.name}_test.yaml"
        assert path.exists(), f"{alert.name} has no promtool test ({path.name})"
        cases = [c for t in yaml.safe_load(path.read_text())["tests"] for c in t["alert_rule_test"]]
        assert {c["alertname"] for c in cases} == {alert.name}
        assert any(c["exp_alerts"] for c in cases), f"{path.name}: no case where {alert.name} fires"
        assert any(not c["exp_alerts"] for c in cases), f"{path.name}: no case where {alert.name} stays quiet"
    known = {f"{a.name}_test.yaml" for a in alerts(example("full"))}
    assert {p.name for p in ALERTS_DIR.glob("*_test.yaml")} == known


def test_promtool_unit_tests_of_the_alerts_pass():
    tests = sorted(p.name for p in ALERTS_DIR.glob("*_test.yaml"))
    r = subprocess.run([_promtool(), "test", "rules", *tests], cwd=ALERTS_DIR, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr
    assert r.stdout.count("SUCCESS") == len(tests)


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_alert_links_to_its_runbook_section():
    runbook = (REPO / "docs" / "runbook.md").read_text()
    anchors = {_slug(h) for h in re.findall(r"^## (.+)$", runbook, flags=re.M)}
    for rule in alert_rules(example("full")):
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("/docs/runbook.md"), url
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no section #{url.split('#')[1]} in docs/runbook.md"
        assert rule["alert"] in runbook, f"docs/runbook.md does not name {rule['alert']}"


def test_dashboard_queries_pass_promtool(tmp_path):
    cm = build_dashboard_configmap(example("full"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (board,) = [json.loads(v) for v in cm["data"].values()]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"])
    # Grafana's variables, as Grafana would put them in.
    exprs = [
        e.replace("$__rate_interval", "1m").replace("$job", ".+").replace("$instance", ".+")
        for _, e in dashboard_queries(example("full"))
    ]
    check_rules(
        tmp_path,
        [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}],
    )


def test_dashboard_has_the_panels_the_issue_asks_for():
    titles = [p["title"] for p in dashboard(example("full"))["panels"]]
    for wanted in (
        "Throughput in and out",
        "Alert rate",
        "Dead-letter rate",
        "Decision latency (job)",
        "Scoring latency (model service)",
        "Model replicas and HPA",
        "Consumer lag",
        "Checkpoints",
        "Operator reconciles",
    ):
        assert wanted in titles


def _exported_names() -> set[str]:
    """Every series name the project's own components export (from their metric objects)."""
    from prometheus_client import REGISTRY

    import fp_operator.metrics  # noqa: F401 - registers the operator's metrics
    import fp_serving.metrics  # noqa: F401 - the scoring service's
    from fp_operator.status_metrics import PIPELINE_READY

    names = {PIPELINE_READY}
    for registered in REGISTRY._collector_to_names.values():  # counters' _total, histograms' _bucket...
        names.update(registered)
    return names


def test_alerts_and_dashboard_read_only_metrics_the_components_export():
    p = example("full")
    exprs = [r["expr"] for r in alert_rules(p)] + [e for _, e in dashboard_queries(p)]
    used = {m for e in exprs for m in SELECTOR.findall(e)}
    known = _exported_names() | FLINK_METRICS | KUBE_STATE_METRICS | {"up"}
    unknown = sorted(used - known)
    assert not unknown, f"metrics no component exports: {unknown}"
    assert not [e for e in exprs if "bentoml_service" in e], "BentoML's own metrics are off in the serving image"


# ------------------------------------------------------------------------------ the dashboard linter


@pytest.fixture(scope="module")
def dashboard_linter() -> str:
    from fp_devtools.cache import MissingPrerequisite
    from fp_devtools.gotools import dashboard_linter_binary

    try:
        return str(dashboard_linter_binary())
    except MissingPrerequisite as exc:
        if ci_skip_policy.in_ci():
            raise
        pytest.skip(f"Grafana's dashboard-linter cannot be built here: {exc} (`make servers` builds it)")


def _lint(linter: str, board: dict, path: Path) -> subprocess.CompletedProcess:
    path.write_text(json.dumps(board, indent=2))
    return subprocess.run([linter, "lint", "--strict", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("name", ["minimal", "full"])
def test_dashboard_passes_grafanas_linter(dashboard_linter, tmp_path, name):
    p = example(name, monitoring__enabled=True)
    r = _lint(dashboard_linter, dashboard(p), tmp_path / "dashboard.json")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr


def test_the_linter_catches_a_fixed_rate_window(dashboard_linter, tmp_path):
    board = dashboard(example("full"))
    board["panels"][0]["targets"][0]["expr"] = board["panels"][0]["targets"][0]["expr"].replace(
        "$__rate_interval", "5m"
    )
    r = _lint(dashboard_linter, board, tmp_path / "dashboard.json")
    assert r.returncode != 0 and "rate_interval" in r.stdout
