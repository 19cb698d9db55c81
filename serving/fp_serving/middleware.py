"""Pure ASGI middleware around the scoring API: request metrics and client errors.

BentoML answers a pydantic validation failure with 400 and falls back to JSON for any content
type it does not know (and unpickles `application/vnd.bentoml+pickle` on internal servers).
`ClientErrors` makes the public contract explicit: only JSON is accepted (415 otherwise,
before the body is read) and invalid input is a 422 whose `detail` names each bad field.
`DocumentedErrors` makes BentoML's OpenAPI document say so.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from fp_serving import metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCORING_PATHS = frozenset({"/score", "/score_batch"})
KNOWN_PATHS = SCORING_PATHS | {"/v1/model", "/livez", "/readyz", "/healthz", "/metrics"}

# A short fix for the pydantic error types a client can cause.
_HINTS = {
    "missing": "send every feature listed by GET /v1/model",
    "extra_forbidden": "unknown field: the accepted features are listed by GET /v1/model",
    "json_invalid": "the body must be one JSON document",
    "too_short": "send at least one row",
    "too_long": "split the rows over several requests",
}


def _json_response(status: int, body: dict[str, Any]) -> tuple[Message, Message]:
    payload = orjson.dumps(body)
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": payload, "more_body": False}


def field_errors(pydantic_errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Pydantic error dicts -> [{field, message, type}] with dotted field paths and a fix."""
    out = []
    for err in pydantic_errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("root",)]
        kind = str(err.get("type", "value_error"))
        message = str(err.get("msg", "invalid value"))
        if hint := _HINTS.get(kind):
            message = f"{message}: {hint}"
        out.append({"field": ".".join(loc) or "body", "message": message, "type": kind})
    return out


def _is_validation_error(body: Any) -> bool:
    """BentoML's body for a pydantic ValidationError: {"error": ..., "detail": [{loc, msg}...]}."""
    detail = body.get("detail") if isinstance(body, dict) else None
    return (
        bool(detail)
        and isinstance(detail, list)
        and all(isinstance(e, dict) and "loc" in e and "msg" in e for e in detail)
    )


def _bentoml_message(body: Any, raw: bytes) -> str:
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return raw.decode("utf-8", "replace")[:500] or "the request body could not be read"


class ClientErrors:
    """415 for non-JSON bodies on the scoring paths; BentoML's 400s -> 422 in the one error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SCORING_PATHS:
            await self.app(scope, receive, send)
            return
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
                break
        if content_type not in (b"", b"application/json"):
            start, body = _json_response(
                415,
                {
                    "error": "unsupported media type",
                    "detail": [
                        {
                            "field": "Content-Type",
                            "message": f"got {content_type.decode('latin-1')!r}: send JSON with "
                            "Content-Type: application/json",
                            "type": "unsupported_media_type",
                        }
                    ],
                },
            )
            await send(start)
            await send(body)
            return

        held: Message | None = None
        chunks: list[bytes] = []

        async def send_wrapper(message: Message) -> None:
            nonlocal held
            if held is None and message["type"] == "http.response.start" and message["status"] == 400:
                held = message  # a validation error: rewrite it once the body is complete
                return
            if held is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            status, payload = 400, b"".join(chunks)
            try:
                original = orjson.loads(payload)
            except orjson.JSONDecodeError:
                original = None
            if _is_validation_error(original):
                errors = field_errors(original["detail"])
            else:  # any other 400 of BentoML's (its body is then a list): the same shape
                errors = [{"field": "body", "message": _bentoml_message(original, payload), "type": "invalid_body"}]
            status = 422
            payload = orjson.dumps(
                {
                    "error": f"invalid request: {len(errors)} error(s), see detail",
                    "detail": errors,
                }
            )
            headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(payload)).encode()))
            await send({**held, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload, "more_body": False})

        await self.app(scope, receive, send_wrapper)


class RequestMetrics:
    """Counts requests by endpoint and status and times them to the last response byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        endpoint = path if path in KNOWN_PATHS else "other"
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.LATENCY.labels(endpoint).observe(time.perf_counter() - started)
            metrics.REQUESTS.labels(endpoint, str(status)).inc()


# ------------------------------------------------------------------------------ OpenAPI

_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI document, corrected to say what this service answers.

    BentoML lists 400/404/500 with bodies of its own for every API; the service answers 415
    and 422 in the `ErrorResponse` shape instead (ClientErrors above), 503/504 when overloaded,
    and a 500 only for a server fault. `/metrics` is Prometheus text, not JSON. Schemathesis
    fuzzes the running service against this document (tests/integration/serving).
    """
    from fp_serving.schemas import ErrorResponse

    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(schema.pop("$defs", {}))
    components["ErrorResponse"] = schema
    paths = doc.get("paths", {})
    for path in SCORING_PATHS:
        op = paths.get(path, {}).get("post")
        if not op:
            continue
        responses = {k: v for k, v in op.get("responses", {}).items() if k.startswith("2")}
        responses.update(
            {
                "415": _error_response("The body is not JSON (Content-Type other than application/json)"),
                "422": _error_response(
                    "A field is missing, unknown, of the wrong type or out of range; detail names it"
                ),
                "500": _error_response(
                    "A server fault (never caused by the input); only the request it came from fails"
                ),
                "503": _error_response("Overloaded: the batch waited too long in the batcher; retry later"),
                "504": _error_response("No response started within the request timeout"),
            }
        )
        op["responses"] = responses
        if "requestBody" in op:  # BentoML leaves it optional; without a body the answer is 422
            op["requestBody"]["required"] = True
    metrics_op = paths.get("/metrics", {}).get("get")
    if metrics_op:
        metrics_op["responses"] = {
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    model_op = paths.get("/v1/model", {}).get("get")
    if model_op:
        model_op.setdefault("responses", {})["503"] = _error_response("The model is not loaded yet")
    ready_op = paths.get("/readyz", {}).get("get")
    if ready_op:
        ready_op.setdefault("responses", {})["503"] = {"description": "Not ready: the model is not loaded yet"}
    return doc


class DocumentedErrors:
    """Serves `GET /docs.json` corrected by `document_errors` (computed once, then cached)."""

    PATH = "/docs.json"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cached: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.PATH or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        if self._cached is None:
            held: list[Message] = []
            chunks: list[bytes] = []

            async def collect(message: Message) -> None:
                if message["type"] == "http.response.start":
                    held.append(message)
                else:
                    chunks.append(message.get("body", b""))

            await self.app(scope, receive, collect)
            if not held or held[0]["status"] != 200:
                for message in held:
                    await send(message)
                await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})
                return
            self._cached = orjson.dumps(document_errors(orjson.loads(b"".join(chunks))))
        start, body = _json_response(200, {})
        body["body"] = self._cached
        start["headers"] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._cached)).encode()),
        ]
        await send(start)
        await send(body)
