"""The alert rules and dashboard queries are valid PromQL (checked by promtool when it is here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import example

from fp_operator.builders.monitoring import build_dashboard_configmap, build_prometheus_rule


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


def test_alert_rules_pass_promtool(tmp_path):
    rule = build_prometheus_rule(example("full"))
    check_rules(tmp_path, rule["spec"]["groups"])
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert len(alerts) == len(set(alerts)) and all(a.startswith("FraudPipeline") for a in alerts)


def test_dashboard_queries_pass_promtool(tmp_path):
    cm = build_dashboard_configmap(example("full"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (dashboard,) = [json.loads(v) for v in cm["data"].values()]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs and all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
    check_rules(
        tmp_path,
        [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]}],
    )
