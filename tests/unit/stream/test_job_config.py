"""The job's arguments: the operator's contract parses, bad values are refused naming the flag."""

from __future__ import annotations

import pytest

from fp_flink.config import JobConfigError, duration_ms, parse_args

BASE = [
    "--pipeline",
    "fraud/payments",
    "--bootstrap-servers",
    "k:9092",
    "--transactions-topic",
    "t",
    "--labels-topic",
    "l",
    "--alerts-topic",
    "a",
    "--dead-letter-topic",
    "d",
    "--group-id",
    "g",
    "--model-tag",
    "fraud-xgb:abc123",
]


def test_the_operators_arguments_parse():
    from pathlib import Path

    from fp_operator.builders.flink_deployment import job_args
    from fraudpipeline.spec import load_pipeline

    for example in sorted(Path(__file__).resolve().parents[3].joinpath("examples").glob("*.yaml")):
        pipeline = load_pipeline(example)
        args = job_args(pipeline)
        assert args[:2] == ["-pym", "fp_flink.job"]
        config = parse_args(args[2:])
        assert config.pipeline == f"{pipeline.namespace}/{pipeline.name}"
        assert config.transactions_topic == pipeline.topic_name("transactions")
        assert config.scoring_mode == pipeline.spec.stream.scoring.mode
        assert config.model_tag == pipeline.spec.model.model_tag


def test_defaults_and_layout():
    config = parse_args([*BASE, "--scoring-mode", "embedded", "--model-path", "/m"])
    assert config.batch_size == 256 and config.batch_timeout_ms == 25 and config.max_skew_ms == 86_400_000
    assert config.resolved_layout(1) == "fused" and config.resolved_layout(2) == "split"
    assert (
        parse_args([*BASE, "--scoring-mode", "embedded", "--model-path", "/m", "--layout", "split"]).resolved_layout(1)
        == "split"
    )
    assert config.transactional_id_prefix == "g"


@pytest.mark.parametrize(
    "extra, flag",
    [
        (["--scoring-mode", "embedded"], "--model-path"),
        (["--scoring-mode", "remote"], "--serving-url"),
        (["--scoring-mode", "embedded", "--model-path", "/m", "--threshold", "1.5"], "--threshold"),
        (["--scoring-mode", "embedded", "--model-path", "/m", "--batch-size", "0"], "--batch-size"),
        (["--scoring-mode", "embedded", "--model-path", "/m", "--batch-size", "20000"], "--batch-size"),
        (["--scoring-mode", "embedded", "--model-path", "/m", "--batch-timeout", "soon"], "--batch-timeout"),
        (["--scoring-mode", "embedded", "--model-path", "/m", "--unknown", "1"], "--unknown"),
    ],
)
def test_bad_arguments_name_the_flag(extra, flag):
    with pytest.raises(JobConfigError, match=flag):
        parse_args([*BASE, *extra])


def test_the_model_tag_follows_the_model_contract():
    args = [a if a != "fraud-xgb:abc123" else "Fraud-XGB:latest" for a in BASE]
    with pytest.raises(JobConfigError, match="--model-tag"):
        parse_args([*args, "--scoring-mode", "embedded", "--model-path", "/m"])


@pytest.mark.parametrize(
    "text, ms", [("30s", 30_000), ("200ms", 200), ("5min", 300_000), ("1d", 86_400_000), ("2", 2_000), (" 10 ms", 10)]
)
def test_durations(text, ms):
    assert duration_ms(text, "--x") == ms
