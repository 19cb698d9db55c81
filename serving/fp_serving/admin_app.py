"""FastAPI app mounted on the BentoML service: `/v1/model` and `/metrics`.

The scoring endpoints are BentoML APIs (service.py); these two describe and observe them.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from fp_serving import metrics
from fp_serving.schemas import ModelInfo

app = FastAPI(
    title="FraudPipeline scoring service: model and metrics",
    docs_url=None,  # BentoML serves the API docs at /
    redoc_url=None,
    openapi_url=None,
)


@app.get("/v1/model", response_model=ModelInfo)
async def model() -> ModelInfo | JSONResponse:
    """The model being served: tag, version, features, training metrics and threshold."""
    import bentoml

    scorer = getattr(bentoml.get_current_service(), "scorer", None)
    if scorer is None:  # the service's one error shape (docs/serving-api.md)
        return JSONResponse(
            {"error": "the model is not loaded yet: retry when /readyz is 200", "detail": []}, status_code=503
        )
    return scorer.info


@app.get("/metrics")
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
