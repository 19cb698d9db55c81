"""FastAPI app mounted on the BentoML service: `/v1/model` and `/metrics`.

The scoring endpoints are BentoML APIs (service.py); these two describe and observe them.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

from fp_serving import metrics
from fp_serving.schemas import ModelInfo

app = FastAPI(
    title="FraudPipeline scoring service: model and metrics",
    docs_url=None,  # BentoML serves the API docs at /
    redoc_url=None,
    openapi_url=None,
)


def _current_scorer():
    import bentoml

    service = bentoml.get_current_service()
    scorer = getattr(service, "scorer", None)
    if scorer is None:
        raise HTTPException(status_code=503, detail="the model is not loaded yet: retry when /readyz is 200")
    return scorer


@app.get("/v1/model", response_model=ModelInfo)
async def model() -> ModelInfo:
    """The model being served: tag, version, features, training metrics and threshold."""
    return _current_scorer().info


@app.get("/metrics")
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)

