"""Golden files: the whole desired state of reviewed example pipelines, child by child."""

from __future__ import annotations

from conftest import check_golden, example

from fp_operator.builders import BuildOptions, Capabilities, build_children
from fp_operator.kinds import MONITORING_KINDS


def test_minimal_pipeline_children(minimal):
    check_golden("minimal", build_children(minimal, Capabilities()))


def test_full_pipeline_children(full):
    check_golden("full", build_children(full, Capabilities()))


def test_suspended_pipeline_children():
    check_golden("minimal-suspended", build_children(example("minimal", suspend=True), Capabilities()))


def test_old_strimzi_without_monitoring_crds():
    # Strimzi <= 0.48 serves only v1beta2; no Prometheus Operator installed.
    caps = Capabilities().at("KafkaTopic", "v1beta2").at("KafkaBridge", "v1beta2").without(*MONITORING_KINDS)
    check_golden(
        "full-v1beta2-no-monitoring-crds",
        build_children(example("full"), caps, BuildOptions(flink_job_cluster_role="flink-job")),
    )
