"""`fraudpipe dev up|status|down` as a person runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

FRAUDPIPE = [str(Path(sys.executable).with_name("fraudpipe"))]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        FRAUDPIPE + list(args), capture_output=True, text=True, check=check, timeout=600, env={**os.environ}
    )


def test_up_status_down_stop_exactly_what_was_started(tmp_path):
    state = tmp_path / "dev"
    up = run("dev", "up", "--with", "prometheus", "--state-dir", str(state))
    env = json.loads((state / "env.json").read_text())
    assert json.loads(up.stdout) == env
    assert set(env["pids"]) == {"prometheus"}
    assert Path(env["logs"]["prometheus"]).exists()
    assert Path(env["tools"]["promtool"]).exists()
    assert httpx.get(f"{env['prometheus']['url']}/-/ready", timeout=5).status_code == 200

    st = json.loads(run("dev", "status", "--state-dir", str(state), "--json").stdout)
    assert st["prometheus"]["alive"] is True and st["prometheus"]["pid"] == env["pids"]["prometheus"]

    # A second `up` reuses what runs instead of starting a duplicate.
    again = json.loads(run("dev", "up", "--with", "prometheus", "--state-dir", str(state)).stdout)
    assert again["pids"] == env["pids"]

    run("dev", "down", "--state-dir", str(state))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{env['prometheus']['url']}/-/ready", timeout=2)
    st = run("dev", "status", "--state-dir", str(state), check=False)
    assert "nothing recorded" in st.stderr or st.returncode == 0


def test_unknown_server_is_refused_with_the_choices(tmp_path):
    out = run("dev", "up", "--with", "zookeeper", "--state-dir", str(tmp_path), check=False)
    assert out.returncode == 1
    assert "zookeeper" in out.stderr and "kafka, kube, prometheus" in out.stderr
