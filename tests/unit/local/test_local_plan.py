"""What `fraudpipe up` derives from a FraudPipeline, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from fp_local import plan
from fraudpipeline.spec import load_pipeline

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def minimal():
    return load_pipeline(REPO / "examples" / "minimal.yaml")


@pytest.fixture
def full():
    return load_pipeline(REPO / "examples" / "full.yaml")


PORTS = plan.Ports(kafka=9092, kafka_controller=9093, ingest=8080, serving=3000, flink_metrics=9249, ui=8090)


def test_the_images_are_said_ignored_once_and_parallelism_adapted(minimal):
    notes = plan.notes(minimal, parallelism=1)
    assert "spec.model.image" in notes.ignored and "spec.stream.image" in notes.ignored
    assert not any("resources" in n for n in notes.ignored)  # only what the file sets
    assert len(notes.adapted) == 1 and "spec.stream.parallelism 2 runs as 1" in notes.adapted[0]
    assert plan.notes(minimal, parallelism=2).adapted == []


def test_a_full_spec_lists_what_only_kubernetes_uses(full):
    notes = plan.notes(full, parallelism=1)
    for field in (
        "spec.stream.flinkConfiguration",
        "spec.stream.jarURI",
        "spec.model.autoscaling",
        "spec.stream.state",
        "spec.kafka.bootstrapServers",
        "spec.monitoring.release",
    ):
        assert field in notes.ignored
    text = " ".join(notes.adapted)
    assert "spec.kafka.topics.transactions.replicas 3 is 1 here" in text
    assert "min.insync.replicas 2 is 1 here" in text


def test_topics_keep_the_spec_names_partitions_and_configs_but_one_replica(full):
    topics = {t.role: t for t in plan.topics(full)}
    assert topics["transactions"].name == "cards-eu.transactions" and topics["transactions"].partitions == 12
    assert topics["transactions"].config == {"retention.ms": "604800000", "min.insync.replicas": "1"}
    assert topics["labels"].config == {"cleanup.policy": "compact"}
    assert set(topics) == {"transactions", "labels", "alerts", "deadLetter", "scores"}


def test_the_job_gets_the_operators_arguments_with_local_addresses(minimal, full, tmp_path):
    args = plan.stream_args(minimal, "127.0.0.1:41000", tmp_path / "model", "http://127.0.0.1:3999")
    assert args[:2] == ["--pipeline", "fraud/payments"]
    assert args[args.index("--bootstrap-servers") + 1] == "127.0.0.1:41000"
    assert args[args.index("--model-path") + 1] == str(tmp_path / "model")
    assert args[args.index("--group-id") + 1] == "fraudpipe.fraud.payments"
    assert "--serving-url" not in args and "-pym" not in args
    remote = plan.stream_args(full, "127.0.0.1:41000", tmp_path / "model", "http://127.0.0.1:3999")
    assert remote[remote.index("--serving-url") + 1] == "http://127.0.0.1:3999"
    assert remote[remote.index("--scores-topic") + 1] == "cards-eu.scores"
    assert remote[remote.index("--threshold") + 1] == "0.35"
    cmd = plan.stream_command(minimal, "b:1", tmp_path, "u", tmp_path / "s", 9249, 1)
    assert cmd[cmd.index("--checkpoint-interval") + 1] == "10s" and cmd[cmd.index("--parallelism") + 1] == "1"


def test_the_serving_environment_is_the_images_contract(full, tmp_path):
    env = plan.serving_env(full, {"PATH": "/bin", "FRAUDPIPE_THRESHOLD": "0.9"}, tmp_path)
    assert env["FRAUDPIPE_MODEL_TAG"] == "fraud-xgb:q3x7kzd2"
    assert env["FRAUDPIPE_THRESHOLD"] == "0.35"  # the spec's, not the caller's environment
    assert env["FRAUDPIPE_WORKERS"] == "2" and env["BENTOML_HOME"] == str(tmp_path) and env["PATH"] == "/bin"


def test_scrape_targets_carry_the_labels_the_operators_rules_select(minimal):
    targets = plan.scrape_targets(minimal, PORTS)
    assert targets["model"][0]["labels"]["job"] == "payments-model"
    assert targets["stream"][0]["labels"]["job"] == "fraud/payments-stream"
    assert targets["stream"][0]["targets"] == ["127.0.0.1:9249"]
    rules = plan.alert_rules(minimal)["groups"]
    exprs = " ".join(r["expr"] for g in rules for r in g["rules"])
    assert 'job="payments-model"' in exprs and 'job="fraud/payments-stream"' in exprs
    assert all(t[0]["labels"]["namespace"] == "fraud" for t in targets.values())
