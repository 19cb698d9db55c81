"""Serving settings from the environment (the serving image's contract), checked once.

No heavy imports here: the CLI and the tests read settings without loading bentoml.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from fraudpipeline.model import MODEL_TAG_EXAMPLE, tag_problem

MODEL_TAG_ENV = "FRAUDPIPE_MODEL_TAG"
THRESHOLD_ENV = "FRAUDPIPE_THRESHOLD"
WORKERS_ENV = "FRAUDPIPE_WORKERS"


class ServingConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class ServingSettings:
    model_tag: str
    threshold_override: float | None
    workers: int


def read_workers(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = env.get(WORKERS_ENV, "").strip()
    if not raw:
        return 1
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ServingConfigError(
            f"{WORKERS_ENV}={raw!r} is not a positive integer: set it to the number of worker processes (default 1)"
        )
    return workers


def read_settings(env: Mapping[str, str] | None = None) -> ServingSettings:
    env = os.environ if env is None else env
    tag = env.get(MODEL_TAG_ENV, "").strip()
    if not tag:
        raise ServingConfigError(
            f"{MODEL_TAG_ENV} is not set: set it to the BentoML tag of the model to serve, "
            f"e.g. {MODEL_TAG_EXAMPLE} (`bentoml models list` shows the tags in $BENTOML_HOME)"
        )
    # The contract's rule (fraudpipeline.model), the same as the CRD's modelTag pattern.
    problem = tag_problem(tag)
    if problem:
        raise ServingConfigError(f"{MODEL_TAG_ENV}={problem}")
    threshold: float | None = None
    raw = env.get(THRESHOLD_ENV, "").strip()
    if raw:
        try:
            threshold = float(raw)
        except ValueError:
            threshold = math.nan
        if not 0.0 <= threshold <= 1.0:
            raise ServingConfigError(
                f"{THRESHOLD_ENV}={raw!r} is not a probability: set a number in [0, 1] or unset "
                "it to use the model's own threshold"
            )
    return ServingSettings(model_tag=tag, threshold_override=threshold, workers=read_workers(env))
