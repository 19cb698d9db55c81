"""Pure ASGI middleware around the scoring API: request metrics and client errors.

BentoML answers a pydantic validation failure with 400 and falls back to JSON for any content
type it does not know (and unpickles `application/vnd.bentoml+pickle` on internal servers).
`ClientErrors` makes the public contract explicit: only JSON is accepted (415 otherwise,
before the body is read) and invalid input is a 422 whose `detail` names each bad field.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, MutableMapping

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
    return bool(detail) and isinstance(detail, list) and all(
        isinstance(e, dict) and "loc" in e and "msg" in e for e in detail
    )


class ClientErrors:
    """415 for non-JSON bodies on the scoring paths; BentoML's 400 validation errors -> 422."""

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
            start, body = _json_response(415, {
                "error": "unsupported media type",
                "detail": [{
                    "field": "Content-Type",
                    "message": f"got {content_type.decode('latin-1')!r}: send JSON with "
                    "Content-Type: application/json",
                    "type": "unsupported_media_type",
                }],
            })
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
                status = 422
                errors = field_errors(original["detail"])
                payload = orjson.dumps({
                    "error": f"invalid request: {len(errors)} error(s), see detail",
                    "detail": errors,
                })
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
