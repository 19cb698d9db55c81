"""The spec model, its CRD and the examples agree; pydantic refuses what the API server refuses."""

from __future__ import annotations

import pytest
import yaml
from spec_cases import REPO, apply_case, invalid_cases, minimal_doc

from fp_operator.crd import build_crd, crd_targets, render_crd
from fraudpipeline.spec import FraudPipelineSpec, SpecError, load_pipeline, parse_pipeline


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c["id"])
def test_local_mode_refuses_what_the_api_server_refuses(case):
    with pytest.raises(SpecError) as err:
        parse_pipeline(apply_case(minimal_doc(), case))
    assert case["message"] in str(err.value)


@pytest.mark.parametrize("path", ["minimal.yaml", "full.yaml"])
def test_examples_are_valid(path):
    p = load_pipeline(REPO / "examples" / path)
    assert p.spec.model.model_tag.startswith("fraud-xgb:")


def test_defaults_of_a_minimal_pipeline():
    p = load_pipeline(REPO / "examples" / "minimal.yaml")
    s = p.spec
    assert (s.kafka.deletion_policy, s.stream.flink_version, s.stream.upgrade_mode, s.stream.scoring.mode) == (
        "Retain",
        "v2_2",
        "savepoint",
        "embedded",
    )
    assert (s.model.autoscaling.min_replicas, s.model.autoscaling.max_replicas) == (1, 3)
    assert p.topic_name("deadLetter") == "fraud.payments.dead-letter"
    assert p.bootstrap_servers == "main-kafka-bootstrap.fraud.svc:9092"


def test_unknown_field_is_refused_by_name():
    doc = minimal_doc()
    doc["spec"]["model"]["treshold"] = 0.5
    with pytest.raises(SpecError, match=r"spec\.model\.treshold"):
        parse_pipeline(doc)


def test_checked_in_crds_are_generated_from_the_spec_model():
    text = render_crd()
    for path in crd_targets(REPO):
        assert path.read_text() == text, f"{path} is stale: run `fraudpipe operator crd --write`"


def test_crd_schema_defaults_equal_the_model_defaults():
    """Defaults live in the schema: the API server fills exactly what pydantic fills."""
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]

    def apply_defaults(node: dict, value):
        if node.get("type") == "object" and "properties" in node:
            value = {} if value is None else dict(value)
            for name, sub in node["properties"].items():
                if name not in value and "default" in sub:
                    value[name] = sub["default"]
                if name in value:
                    value[name] = apply_defaults(sub, value[name])
        return value

    given = minimal_doc()["spec"]
    filled = apply_defaults(schema, given)
    model = FraudPipelineSpec.model_validate(given).model_dump(by_alias=True, exclude_none=True)
    assert filled == model


def test_crd_is_structural_and_complete():
    version = build_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == ["Ready", "Phase", "Model", "Job", "Age"]
    assert build_crd()["spec"]["names"]["shortNames"] == ["fp"]

    def walk(node: dict, path: str):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        assert "$ref" not in node and "title" not in node, path
        for name, sub in (node.get("properties") or {}).items():
            if path.startswith(".spec") or path.startswith(".status"):
                assert sub.get("description"), f"{path}.{name} has no description"
            walk(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    root = version["schema"]["openAPIV3Schema"]
    walk(root, "")
    assert not root["properties"]["spec"].get("x-kubernetes-preserve-unknown-fields")
    yaml.safe_load(render_crd())


def test_benchmark_pipeline_is_the_minimal_example():
    from fp_devtools.bench.operator_harness import MINIMAL_SPEC

    assert minimal_doc()["spec"] == MINIMAL_SPEC


def test_docs_field_reference_is_current():
    from fp_operator.crd import DOC_BEGIN, DOC_END, spec_reference

    text = (REPO / "docs" / "operator.md").read_text()
    block = text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0]
    assert block == "\n" + spec_reference(), "docs/operator.md is stale: run `fraudpipe operator crd --write`"
