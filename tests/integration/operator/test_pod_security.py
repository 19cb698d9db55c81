"""The pods a pipeline's workloads describe meet the restricted Pod Security Standard, as the API
server's own Pod Security admission judges them in a namespace that enforces it.

The Flink Kubernetes Operator builds the JobManager's and TaskManagers' pods from the FlinkDeployment's
`podTemplate` (its main container gets the image and command); the model's pods come from its
Deployment. Each is created here as a Pod with a server-side dry run: admission runs, nothing starts.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "operator"))
from spec_cases import minimal_doc

from fp_operator.builders.flink_deployment import MAIN_CONTAINER, build_flink_deployment
from fp_operator.builders.model_service import build_model_deployment
from fraudpipeline.spec import parse_pipeline

pytestmark = pytest.mark.integration
NAMESPACE = "fp-restricted"


@pytest.fixture(scope="module")
def restricted(cluster) -> str:
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    r = cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}})
    assert r.status_code in (201, 409), r.text
    return NAMESPACE


def _pipeline():
    doc = minimal_doc()
    doc["metadata"] = {"name": "psa", "namespace": NAMESPACE, "uid": "psa-uid"}
    return parse_pipeline(doc)


def _dry_run(cluster, name: str, pod_spec: dict):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE}, "spec": pod_spec}
    return cluster.http.post(cluster.path("v1", "Pod", NAMESPACE), json=pod, params={"dryRun": "All"})


def _flink_pod_spec(p) -> dict:
    """What the Flink operator makes of the template: the main container with the image and a command."""
    deployment = build_flink_deployment(p)
    spec = copy.deepcopy(deployment["spec"]["podTemplate"]["spec"])
    (main,) = [c for c in spec["containers"] if c["name"] == MAIN_CONTAINER]
    main.update({"image": deployment["spec"]["image"], "args": ["jobmanager"]})
    return spec


def test_flink_pods_meet_the_restricted_standard(cluster, restricted):
    r = _dry_run(cluster, "psa-jobmanager", _flink_pod_spec(_pipeline()))
    assert r.status_code == 201, r.text


def test_model_pods_meet_the_restricted_standard(cluster, restricted):
    template = build_model_deployment(_pipeline())["spec"]["template"]
    r = _dry_run(cluster, "psa-model", template["spec"])
    assert r.status_code == 201, r.text


def test_the_admission_has_teeth(cluster, restricted):
    """The same Flink pod without its security contexts is refused, naming what it lacks."""
    spec = _flink_pod_spec(_pipeline())
    spec.pop("securityContext")
    for container in spec["containers"]:
        container.pop("securityContext", None)
    r = _dry_run(cluster, "psa-bare", spec)
    assert r.status_code == 403, r.text
    assert "violates PodSecurity" in r.text and "restricted" in r.text and "allowPrivilegeEscalation" in r.text
