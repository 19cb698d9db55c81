"""`fraudpipe up` refuses before anything starts: a FraudPipeline that breaks a rule (with the API
server's message for it) and a missing prerequisite (a port in use, with the fix).

The invalid specs are the table the API server is tested against
(tests/unit/operator/invalid_specs.yaml, checked on a real kube-apiserver by
tests/integration/operator/test_invalid_specs.py).
"""

from __future__ import annotations

import copy
import socket

import pytest
import yaml
from local_helpers import FRAUDPIPE, REPO, write_pipeline

from fp_devtools.process import free_port

pytestmark = pytest.mark.integration

CASES = yaml.safe_load((REPO / "tests" / "unit" / "operator" / "invalid_specs.yaml").read_text())


def _apply(doc: dict, case: dict) -> dict:
    doc = copy.deepcopy(doc)
    for dotted, value in case["set"].items():
        node = doc if dotted.startswith("metadata.") else doc["spec"]
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


def _up(env, *args: str):
    import subprocess

    return subprocess.run(
        [*FRAUDPIPE, "up", *args, "--detach"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_a_pipeline_that_breaks_a_rule_is_refused_with_the_api_servers_message(case, env, tmp_path):
    doc = _apply(yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text()), case)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    state = tmp_path / "state"
    done = _up(env, "-f", str(bad), "--state-dir", str(state))
    assert done.returncode == 2, done.stderr
    assert case["message"] in " ".join(done.stderr.split()), done.stderr
    # The field it names: the API server's path, or (a rule on an object) the object holding it.
    field = case["field"]
    assert field in done.stderr or field.rsplit(".", 1)[0] in done.stderr, done.stderr
    assert "nothing was started" in done.stderr
    assert not state.exists()


def test_a_port_in_use_is_reported_with_the_fix_before_anything_starts(env, tmp_path):
    port = free_port()
    pipeline = write_pipeline(tmp_path / "pipeline.yaml", "itbusy", port)
    state = tmp_path / "state"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = _up(env, "-f", str(pipeline), "--state-dir", str(state), "--ui-port", str(free_port()))
    text = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr
    assert f"port {port}, for the ingest API (spec.kafka.bridge.port), is in use" in text
    assert "--ingest-port N" in text and "nothing was started" in text
    assert not (state / "local.json").exists()
