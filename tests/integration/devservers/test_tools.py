"""helm, promtool and a Prometheus server that answers queries."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_helm_runs(tools):
    out = subprocess.run([tools["helm"], "version", "--short"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("v3.")


def test_kubectl_talks_to_the_api_server(tools, kube):
    out = subprocess.run(
        [
            tools["kubectl"],
            "--kubeconfig",
            kube["kubeconfig"],
            "get",
            "namespace",
            "default",
            "-o",
            "jsonpath={.status.phase}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "Active"


def test_promtool_accepts_a_minimal_config_and_rejects_a_broken_one(tools, tmp_path):
    good = tmp_path / "good.yml"
    good.write_text(
        "global:\n  scrape_interval: 15s\nscrape_configs:\n"
        "  - job_name: x\n    static_configs:\n      - targets: ['127.0.0.1:9']\n"
    )
    ok = subprocess.run([tools["promtool"], "check", "config", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text("global:\n  scrape_interval: often\n")
    refused = subprocess.run([tools["promtool"], "check", "config", str(bad)], capture_output=True, text=True)
    assert refused.returncode != 0


def test_prometheus_answers_a_query(prometheus):
    # Prometheus scrapes itself; wait for the first sample rather than sleeping a fixed time.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = httpx.get(f"{prometheus['url']}/api/v1/query", params={"query": 'up{job="prometheus"}'}, timeout=5)
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "success"
        if body["data"]["result"]:
            assert body["data"]["result"][0]["value"][1] == "1"
            return
        time.sleep(0.5)
    pytest.fail("Prometheus returned no sample of up{job='prometheus'} within 60 s")
