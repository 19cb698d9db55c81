"""`fraudpipe train` end to end: a real run, the BentoML model store, the exported files.

No server is needed (the model store is a folder), so these tests carry no marker. The
handbook run takes 30-90 s on 2 cores depending on what else runs (the summary prints the load
average); `--quick` about 10 s. The data is the regenerated handbook data set (generated into the
cache on first use, about 10 s) unless FRAUDPIPE_DATA names files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fraudpipeline.data import default_data_paths
from fraudpipeline.features import FEATURE_NAMES

FRAUDPIPE = [sys.executable, "-m", "fraudpipeline.cli"]
# The handbook's Chapter 3 XGBoost baseline on this split (AUC, AP, CP@100).
BASELINE = {"auc": 0.862, "ap": 0.639, "cp100": 0.273}
# What docs/features.md publishes for `fraudpipe train` on that split. The run is deterministic
# (same data, seed, XGBoost build); the tolerance only absorbs the published rounding.
PUBLISHED = {"auc": 0.879, "ap": 0.684, "cp100": 0.293}
TOLERANCE = 0.002
SPLIT = ["--train-start", "2018-07-25", "--train-days", "7", "--delay-days", "7", "--test-days", "7"]


def train(args: list[str], bentoml_home: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True", **env}
    return subprocess.run([*FRAUDPIPE, "train", *args], capture_output=True, text=True, env=full_env, timeout=600)


def check_store_and_export(summary: dict, bentoml_home: Path, export: Path) -> None:
    """The model is in the store with the contract's metadata, and the export scores the same."""
    code = f"""
import json, bentoml
m = bentoml.models.get({summary["model_tag"]!r})
print(json.dumps({{"tag": str(m.tag), "meta": m.info.metadata, "module": m.info.module}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "True"},
    )
    stored = json.loads(out.stdout.strip().splitlines()[-1])
    assert stored["tag"].startswith("fraud-xgb:")
    assert stored["module"] == "bentoml.xgboost"
    meta = stored["meta"]
    assert meta["features"] == FEATURE_NAMES
    assert 0 < meta["threshold"] < 1
    assert set(meta["train_window"]) == {"start", "end", "delay_days", "test_start", "test_end"}
    assert {"auc", "ap", "cp100"} <= set(meta["metrics"])
    assert meta["xgboost_params"]["base_score"] == 0.5

    from fraudpipeline.training.store import load_export

    booster, sidecar = load_export(export)
    assert sidecar.tag == summary["model_tag"]
    assert sidecar.threshold == meta["threshold"]
    import xgboost as xgb

    rows = np.random.default_rng(0).random((5, len(FEATURE_NAMES))).astype(np.float32)
    scores = booster.predict(xgb.DMatrix(rows, feature_names=FEATURE_NAMES))
    assert scores.shape == (5,) and ((scores >= 0) & (scores <= 1)).all()


def handbook_data() -> Path:
    """$FRAUDPIPE_DATA (which must exist), else the regenerated handbook data set."""
    (path,) = default_data_paths()
    assert path.exists(), f"FRAUDPIPE_DATA names {path}, which does not exist"
    return path


def report(summary: dict) -> None:
    print(
        f"\nfraudpipe train{' --quick' if summary['quick'] else ''}: AUC {summary['auc']:.4f}, "
        f"AP {summary['ap']:.4f}, CP@100 {summary['cp100']:.4f}; params {summary['params']}; "
        f"threshold {summary['threshold']}; timings {summary['timings_s']}; "
        f"load average {summary['load_average_1min']} (2 cores)"
    )


def test_train_on_the_handbook_split_holds_the_published_figures(tmp_path):
    data = handbook_data()
    export = tmp_path / "export"
    proc = train(["--data", str(data), *SPLIT, "--json", "--export", str(export)], tmp_path / "bentoml")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    report(summary)
    # The handbook's own split sizes: the same rows as its Chapter 3.
    assert (summary["n_train"], summary["n_test"], summary["n_test_frauds"]) == (67_240, 58_264, 385)
    for metric, published in PUBLISHED.items():
        assert abs(summary[metric] - published) <= TOLERANCE, (
            f"{metric} {summary[metric]} is not the published {published} (docs/features.md)"
        )
    chosen = {k: summary["params"][k] for k in ("learning_rate", "max_depth", "n_trees")}
    assert chosen == {"learning_rate": 0.1, "max_depth": 3, "n_trees": 200}
    for metric, floor in BASELINE.items():
        assert summary[metric] >= floor, f"{metric} {summary[metric]} below the handbook baseline {floor}"
    assert "Validation search" in proc.stderr  # progress was shown
    check_store_and_export(summary, tmp_path / "bentoml", export)


def test_quick_train_for_a_first_local_run(tmp_path):
    # No --data: $FRAUDPIPE_DATA, else the regenerated handbook data set, as a first `fraudpipe up` trains.
    proc = train([*SPLIT, "--quick", "--json", "--no-save"], tmp_path / "bentoml")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    report(summary)
    if not os.environ.get("FRAUDPIPE_DATA", "").strip():
        assert summary["data"].startswith("the Fraud Detection Handbook's data set, regenerated"), summary["data"]
    assert summary["quick"] is True and summary["model_tag"] is None
    assert summary["params"]["n_trees"] == 200 and summary["params"]["max_depth"] == 3
    # One fold and one candidate instead of 4 folds x 16 (counted, not timed: a loaded machine
    # made a timing comparison fail once).
    assert summary["search"] == {"candidates": 1, "folds": 1}
    # Same parameters as the full search: the same test figures; only the threshold may move.
    for metric, published in PUBLISHED.items():
        assert abs(summary[metric] - published) <= TOLERANCE


def test_train_refuses_a_missing_data_file(tmp_path):
    proc = train([*SPLIT, "--no-save"], tmp_path / "bentoml", FRAUDPIPE_DATA=str(tmp_path / "absent.parquet"))
    assert proc.returncode == 2
    assert "data file not found" in proc.stderr and "absent.parquet" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "/nonexistent/tx.parquet"], "data file not found: /nonexistent/tx.parquet"),
        (["--train-start", "25/07/2018"], "use YYYY-MM-DD"),
        (["--train-days", "0"], "--train-days must be at least 1"),
        (["--train-start", "2019-01-01", "--validation-folds", "0"], "choose --train-start"),
    ],
)
def test_bad_arguments_are_named(tmp_path, args, message):
    proc = train([*args, "--no-save"], tmp_path / "bentoml")
    assert proc.returncode == 2
    assert message in " ".join(proc.stderr.split()), proc.stderr
