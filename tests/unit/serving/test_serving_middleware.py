"""The API edge: JSON only (415), validation errors as 422 naming fields, requests counted."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from fp_serving.middleware import ClientErrors, DocumentedErrors, RequestMetrics, document_errors, field_errors
from fp_serving.schemas import ErrorResponse


async def score(request: Request):
    """Answers like BentoML: a pydantic failure is a 400 with the errors under "detail"."""
    body = await request.json()
    if body.get("mode") == "invalid":
        return JSONResponse(
            {
                "error": "2 validation errors for Input",
                "detail": [
                    {"type": "missing", "loc": ["rows", 3, "tx_amount"], "msg": "Field required"},
                    {"type": "greater_than_equal", "loc": ["tx_amount"], "msg": "Input should be >= 0"},
                ],
            },
            status_code=400,
        )
    if body.get("mode") == "other400":
        return JSONResponse([{"error": "bad input"}], status_code=400)
    return JSONResponse({"ok": True})


async def livez(request: Request):
    return PlainTextResponse("\n")


class Client:
    """Synchronous calls into an ASGI app through httpx's ASGI transport (no sockets)."""

    def __init__(self, app):
        self.transport = httpx.ASGITransport(app=app)

    def _call(self, method, path, **kwargs):
        async def go():
            async with httpx.AsyncClient(transport=self.transport, base_url="http://test") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())

    def post(self, path, **kwargs):
        return self._call("POST", path, **kwargs)

    def get(self, path, **kwargs):
        return self._call("GET", path, **kwargs)


@pytest.fixture()
def client():
    app = Starlette(routes=[Route("/score", score, methods=["POST"]), Route("/livez", livez)])
    return Client(RequestMetrics(ClientErrors(app)))


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.bentoml+pickle",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_non_json_is_415_before_the_app_runs(client, content_type):
    resp = client.post("/score", content=b"\x80\x04K\x01.", headers={"content-type": content_type})
    assert resp.status_code == 415
    assert resp.json()["detail"][0]["field"] == "Content-Type"
    assert "application/json" in resp.json()["detail"][0]["message"]


def test_json_with_charset_passes(client):
    resp = client.post("/score", content=b'{"mode": "ok"}', headers={"content-type": "application/json; charset=utf-8"})
    assert resp.status_code == 200 and resp.json() == {"ok": True}


def test_validation_errors_become_422_with_fields(client):
    resp = client.post("/score", json={"mode": "invalid"})
    assert resp.status_code == 422
    assert int(resp.headers["content-length"]) == len(resp.content)
    detail = resp.json()["detail"]
    assert [d["field"] for d in detail] == ["rows.3.tx_amount", "tx_amount"]
    assert "GET /v1/model" in detail[0]["message"]


def test_other_400s_become_422_in_the_one_error_shape(client):
    resp = client.post("/score", json={"mode": "other400"})
    assert resp.status_code == 422
    assert resp.json() == {
        "error": "invalid request: 1 error(s), see detail",
        "detail": [{"field": "body", "message": "bad input", "type": "invalid_body"}],
    }
    ErrorResponse.model_validate(resp.json())


def test_requests_are_counted_and_timed(client):
    def value(name, labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    ok0 = value("fraudpipe_serving_requests_total", {"endpoint": "/score", "status": "200"})
    bad0 = value("fraudpipe_serving_requests_total", {"endpoint": "/score", "status": "415"})
    timed0 = value("fraudpipe_serving_request_duration_seconds_count", {"endpoint": "/score"})
    other0 = value("fraudpipe_serving_requests_total", {"endpoint": "other", "status": "404"})
    client.post("/score", json={"mode": "ok"})
    client.post("/score", content=b"x", headers={"content-type": "text/plain"})
    client.get("/no/such/path")
    assert value("fraudpipe_serving_requests_total", {"endpoint": "/score", "status": "200"}) == ok0 + 1
    assert value("fraudpipe_serving_requests_total", {"endpoint": "/score", "status": "415"}) == bad0 + 1
    assert value("fraudpipe_serving_request_duration_seconds_count", {"endpoint": "/score"}) == timed0 + 2
    assert value("fraudpipe_serving_requests_total", {"endpoint": "other", "status": "404"}) == other0 + 1


def test_field_errors_shape():
    out = field_errors(
        [
            {"type": "json_invalid", "loc": [], "msg": "Invalid JSON"},
            {"type": "extra_forbidden", "loc": ["root", "tx_amont"], "msg": "Extra inputs"},
        ]
    )
    assert out[0]["field"] == "body" and "one JSON document" in out[0]["message"]
    assert out[1]["field"] == "tx_amont" and out[1]["type"] == "extra_forbidden"


BENTOML_DOC = {
    "openapi": "3.0.2",
    "paths": {
        "/score": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {}}}},
                "responses": {"200": {"description": "ok"}, "400": {}, "404": {}, "500": {}},
            }
        },
        "/score_batch": {"post": {"requestBody": {"content": {}}, "responses": {"200": {}, "400": {}}}},
        "/metrics": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {}}}}}}},
        "/v1/model": {"get": {"responses": {"200": {}}}},
        "/readyz": {"get": {"responses": {"200": {}}}},
    },
    "components": {"schemas": {"InvalidArgument": {}}},
}


def test_the_openapi_document_says_what_the_service_answers():
    import copy

    doc = document_errors(copy.deepcopy(BENTOML_DOC))
    for path in ("/score", "/score_batch"):
        op = doc["paths"][path]["post"]
        assert sorted(op["responses"]) == ["200", "415", "422", "500", "503", "504"]
        assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
        assert op["requestBody"]["required"] is True
    schemas = doc["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"] and "ErrorDetail" in schemas
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "503" in doc["paths"]["/v1/model"]["get"]["responses"]


def test_docs_json_is_rewritten_once_and_served_from_cache():
    calls = []

    async def docs(request: Request):
        calls.append(1)
        return JSONResponse(BENTOML_DOC)

    app = Client(DocumentedErrors(Starlette(routes=[Route("/docs.json", docs)])))
    first, second = app.get("/docs.json"), app.get("/docs.json")
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    assert "ErrorResponse" in first.json()["components"]["schemas"] and len(calls) == 1
