"""The BentoML scoring service: `bentoml serve fp_serving.service:FraudScorer`.

Configuration is the serving image's contract (docs/serving-api.md): FRAUDPIPE_MODEL_TAG,
FRAUDPIPE_THRESHOLD, FRAUDPIPE_WORKERS and BENTOML_HOME. The tuning follows what was measured
on this kind of machine (../shared/notes/serving-measured.md): async endpoints so scoring runs
on the event loop without a thread hop, typed pydantic inputs and outputs (a dict or list
output makes BentoML rebuild a JSON schema per response), XGBoost with one thread, no access
log, no tracing middleware, BentoML's own metrics middleware replaced by a lighter one, and
gc.freeze() after load. bentoml_patches.py fixes BentoML's request-timeout middleware, which
kept every request's objects alive for the whole timeout (the cause of the 70-230 ms p99
spikes the shared notes saw).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import bentoml
import numpy as np
import orjson
from starlette.responses import Response

from fp_serving import bentoml_patches, metrics
from fp_serving.admin_app import app as admin_app
from fp_serving.config import ServingConfigError, ServingSettings, read_settings
from fp_serving.middleware import ClientErrors, DocumentedErrors, RequestMetrics
from fp_serving.schemas import (
    MAX_BATCH_ROWS,
    Features,
    Score,
    ScoreBatch,
    ScoreBatchRequest,
    feature_values,
)
from fp_serving.scoring import (
    N_FEATURES,
    ModelLoadError,
    RowFailure,
    Scorer,
    batch_body,
    check_model,
    load_scorer,
    score_batch_rows,
)

logger = logging.getLogger("fp_serving")


class ScoreBatchResponse(ScoreBatch, bentoml.IODescriptor):
    """`ScoreBatch` on the wire. The batched API returns plain row dicts (the adaptive batcher
    splits lists between the merged requests); orjson writes them in one call, a tenth of the
    cost of building and dumping 256 pydantic objects."""

    @classmethod
    async def to_http_response(cls, obj: Any, serde: Any) -> Response:
        status, body = batch_body(obj)
        return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _preflight() -> ServingSettings:
    """Check the settings and the model when the service is imported.

    `bentoml serve` imports this module before it starts any worker, so a missing tag or model
    stops the server there with the reason; a failure inside a worker would only make the
    process supervisor restart it forever.
    """
    try:
        settings = read_settings()
        check_model(settings)
    except (ServingConfigError, ModelLoadError) as exc:
        raise SystemExit(f"fraud scorer: refusing to start: {exc}") from None
    return settings


SETTINGS = _preflight()
bentoml_patches.install()


@bentoml.service(
    name="fraud_scorer",
    workers=SETTINGS.workers,
    traffic={"timeout": 30},
    logging={"access": {"enabled": False}},
    # Off: BentoML's request-metrics middleware; our own (fraudpipe_serving_*) is cheaper and
    # /metrics is served by the mounted admin app from the same multi-process registry.
    metrics={"enabled": False},
    # BentoML's OpenTelemetry middleware took ~20% of the CPU of a /score request (profiled
    # with py-spy) and, at BentoML's default sample rate of 0, exports nothing: skip it here.
    tracing={"excluded_urls": ["/score", "/score_batch", "/v1/model", "/metrics", "/livez", "/readyz", "/healthz"]},
)
@bentoml.asgi_app(admin_app, path="/")
class FraudScorer:
    """Scores transaction feature vectors with the XGBoost fraud model."""

    def __init__(self) -> None:
        self.scorer: Scorer | None = None
        scorer = load_scorer(SETTINGS)
        info = scorer.info
        metrics.set_model_info(info.tag, info.version, info.threshold)
        self.scorer = scorer
        self._threshold = scorer.threshold
        self._version = info.version
        logger.info("serving %s (threshold %s from %s)", info.tag, info.threshold, info.threshold_source)
        # Everything allocated so far lives as long as the process: keep it out of the
        # collector's full passes, which otherwise show up as 50-200 ms latency spikes.
        gc.collect()
        gc.freeze()
        metrics.watch_gc()

    async def __is_ready__(self) -> bool:
        return self.scorer is not None

    @bentoml.api(route="/score")
    async def score(self, features: Features, /) -> Score:
        """Score one feature vector."""
        x = np.fromiter(feature_values(features), dtype=np.float32, count=N_FEATURES).reshape(1, N_FEATURES)
        p = self.scorer.predict(x)
        probability = float(p[0])
        fraud = probability >= self._threshold
        metrics.PREDICT_BATCH.labels("/score").observe(1)
        metrics.ROWS.labels("/score").inc()
        metrics.record_scores(p, int(fraud))
        return Score(fraud_probability=probability, is_fraud=fraud, model_version=self._version)

    @bentoml.api(
        route="/score_batch",
        batchable=True,
        # Rows merged per model call; a larger request is split by the batcher.
        max_batch_size=4096,
        # Waiting longer than this in the batcher's queue answers 503 (overloaded).
        max_latency_ms=2000,
        input_spec=ScoreBatchRequest,
        output_spec=ScoreBatchResponse,
    )
    async def score_batch(self, rows: list[Features]) -> list[dict[str, Any] | RowFailure]:
        """Score many feature vectors; concurrent requests are merged into one model call."""
        results, p = score_batch_rows(self.scorer, rows)
        metrics.PREDICT_BATCH.labels("/score_batch").observe(len(rows))
        metrics.ROWS.labels("/score_batch").inc(p.size)
        metrics.record_scores(p, int((p >= self._threshold).sum()))
        return results


# The first added is the outer one: time everything, including the 415/422 answers.
FraudScorer.add_asgi_middleware(RequestMetrics)
FraudScorer.add_asgi_middleware(ClientErrors)
FraudScorer.add_asgi_middleware(DocumentedErrors)

__all__ = ["FraudScorer", "MAX_BATCH_ROWS"]
