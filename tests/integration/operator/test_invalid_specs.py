"""Bad specs are refused by the API server itself, with a message naming the field."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "operator"))
from spec_cases import apply_case, invalid_cases, minimal_doc

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c["id"])
def test_api_server_refuses_invalid_spec(cluster, case):
    cluster.ensure_namespace("fp-invalid")
    doc = apply_case(minimal_doc(), case)
    doc["metadata"]["namespace"] = "fp-invalid"
    r = cluster.create(doc)
    assert r.status_code == 422, r.text
    message = r.json()["message"]
    assert f"{case['field']}: Invalid value" in message and case["message"] in message, message


def test_valid_minimal_spec_is_defaulted_by_the_api_server(cluster):
    cluster.ensure_namespace("fp-invalid")
    doc = minimal_doc()
    doc["metadata"] = {"name": "defaults", "namespace": "fp-invalid"}
    r = cluster.http.post(
        cluster.path("frauddetect.dev/v1alpha1", "FraudPipeline", "fp-invalid"), json=doc, params={"dryRun": "All"}
    )
    spec = cluster.check(r)["spec"]
    assert spec["kafka"]["deletionPolicy"] == "Retain" and spec["stream"]["flinkVersion"] == "v2_2"
    assert spec["model"]["autoscaling"] == {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 70}


def test_api_server_refuses_to_change_max_parallelism_and_allows_parallelism(cluster):
    """A transition rule: maxParallelism is fixed once created (the job's state cannot follow a change);
    parallelism, which a savepoint carries, may change."""
    cluster.ensure_namespace("fp-invalid")
    doc = minimal_doc()
    doc["metadata"] = {"name": "fixed-groups", "namespace": "fp-invalid"}
    cluster.check(cluster.create(doc))
    path = cluster.path("frauddetect.dev/v1alpha1", "FraudPipeline", "fp-invalid", "fixed-groups")

    def patch(stream: dict):
        return cluster.http.patch(
            path,
            json={"spec": {"stream": stream}},
            headers={"Content-Type": "application/merge-patch+json"},
        )

    try:
        refused = patch({"maxParallelism": 240})
        assert refused.status_code == 422, refused.text
        message = refused.json()["message"]
        assert "spec.stream.maxParallelism: Invalid value" in message and "cannot change" in message, message
        allowed = patch({"parallelism": 3})
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["spec"]["stream"]["maxParallelism"] == 120
    finally:
        cluster.http.delete(path)
