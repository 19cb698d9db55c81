"""`fraudpipe train --model-tag`: the model contract's tag rule, checked before any training."""

from __future__ import annotations

import subprocess
import sys


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraudpipeline.cli", "train", *args], capture_output=True, text=True, timeout=120
    )


def test_a_floating_tag_is_refused_before_training():
    done = _train("--model-tag", "fraud-xgb:latest")
    assert done.returncode == 2
    assert "--model-tag 'fraud-xgb:latest' floats: pin the version" in " ".join(done.stderr.split())


def test_a_malformed_tag_is_refused_naming_the_rule():
    done = _train("--model-tag", "Fraud-XGB")
    assert done.returncode == 2 and "is not a pinned BentoML tag" in " ".join(done.stderr.split())


def test_a_tag_without_saving_is_refused():
    done = _train("--model-tag", "fraud-xgb:abc", "--no-save")
    assert done.returncode == 2 and "drop --no-save" in done.stderr
