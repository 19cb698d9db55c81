"""The ingest service's HTTP surface: an ASGI app for uvicorn.

Produce requests (POST /topics/..., /v1/transactions, /v1/labels) are the hot path: `IngestApp`
answers them straight from the ASGI scope, without FastAPI's routing and parameter handling,
which would cost more per request than the Kafka produce itself. Everything else (health, metrics,
topic metadata, the OpenAPI document, errors for what is not served) goes to a FastAPI app, which
also declares the produce routes so that /openapi documents them (they answer the same way if
reached through it).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fraudpipeline.ingest import openapi
from fraudpipeline.ingest.bridge import BridgeError
from fraudpipeline.ingest.service import JSON, KAFKA_JSON, IngestService, Reply, error_reply, json_reply
from fraudpipeline.ingest.settings import IngestSettings

log = logging.getLogger("fraudpipeline.ingest")

# The Strimzi Kafka Bridge release whose produce API this service follows.
BRIDGE_VERSION = "1.1.0"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

TOPIC_ROUTE = "/topics/{topicname}"
PARTITION_ROUTE = "/topics/{topicname}/partitions/{partitionid}"


class _Disconnected(Exception):
    pass


def _route(path: str) -> tuple[str, str | None, str | None] | None:
    """(endpoint label, topic or role, partition) of a produce path, or None."""
    if path.startswith("/topics/"):
        parts = path[8:].split("/")
        if len(parts) == 1 and parts[0]:
            return TOPIC_ROUTE, parts[0], None
        if len(parts) == 3 and parts[0] and parts[1] == "partitions" and parts[2]:
            return PARTITION_ROUTE, parts[0], parts[2]
        return None
    if path == "/v1/transactions":
        return path, "transactions", None
    if path == "/v1/labels":
        return path, "labels", None
    return None


class IngestApp:
    """ASGI entry point: produce requests answered directly, the rest handed to FastAPI."""

    def __init__(self, service: IngestService, api: FastAPI):
        self.service = service
        self.api = api
        self.max_body = service.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = _route(scope["path"])
            if route is not None:
                await self._produce(route, scope, receive, send)
                return
        await self.api(scope, receive, send)

    async def _produce(
        self, route: tuple[str, str | None, str | None], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        metrics = self.service.metrics
        metrics.in_flight.inc()
        endpoint, name, partition = route
        content_type = length = None
        for key, value in scope["headers"]:
            if key == b"content-type":
                content_type = value
            elif key == b"content-length":
                length = value
        media = JSON if endpoint.startswith("/v1/") else KAFKA_JSON
        try:
            try:
                body = await self._read(receive, int(length) if length and length.isdigit() else None)
                reply = await self.service.dispatch(
                    endpoint, name or "", partition, content_type, scope.get("query_string", b""), body
                )
            except _Disconnected:
                return
            except BridgeError as exc:
                reply = error_reply(exc, media)
            except Exception as exc:  # a bug must still get an answer in the API's shape
                log.exception("unexpected error in %s", endpoint)
                reply = error_reply(BridgeError(500, f"Internal Server Error: {type(exc).__name__}: {exc}"), media)
            await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers()})
            await send({"type": "http.response.body", "body": reply.body})
            metrics.observe_request(endpoint, reply.status, time.perf_counter() - started)
        finally:
            metrics.in_flight.dec()

    async def _read(self, receive: Receive, length: int | None) -> bytes:
        """The request body, refused with 413 as soon as it is known to exceed the limit."""
        if length is not None and length > self.max_body:
            raise self.service.too_large(length)
        first = await receive()
        if first["type"] == "http.disconnect":
            raise _Disconnected
        body = first.get("body", b"")
        if not first.get("more_body"):
            if len(body) > self.max_body:
                raise self.service.too_large(len(body))
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self.service.too_large(size)
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


def _package_version() -> str:
    try:
        return version("fraudpipeline")
    except PackageNotFoundError:
        return "unknown"


def _reply(reply: Reply) -> Response:
    headers = {"retry-after": str(reply.retry_after)} if reply.retry_after is not None else None
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type.decode(), headers=headers)


def _bridge_error(status: int, message: str) -> Response:
    return _reply(error_reply(BridgeError(status, message)))


def build_api(service: IngestService) -> FastAPI:
    settings = service.settings
    gateway = service.gateway

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await service.start()
        # Objects alive after start-up never need collecting again: keep full collections short.
        gc.collect()
        gc.freeze()
        yield
        await service.stop()

    app = FastAPI(
        title="fraudpipe ingest",
        version=_package_version(),
        lifespan=lifespan,
        openapi_url="/openapi",
        docs_url=None,
        redoc_url=None,
        description=openapi.DESCRIPTION,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return _bridge_error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return _reply(error_reply(BridgeError(400, "Validation error on: " + "; ".join(errors), errors)))

    # ------------------------------------------------------------------------- health, metrics

    @app.get(
        "/livez",
        operation_id="livez",
        response_class=Response,
        tags=["Health"],
        summary="The process answers (liveness probe).",
    )
    async def livez() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get(
        "/readyz",
        operation_id="readyz",
        response_class=Response,
        tags=["Health"],
        summary="Kafka reachable and the pipeline's topics known (readiness probe): 200, else 503 with the reasons.",
        responses={503: {"description": "Not ready."}},
    )
    async def readyz() -> Response:
        state = service.readiness()
        return Response(
            json_reply(200, state).body, status_code=200 if state["ready"] else 503, media_type="application/json"
        )

    @app.get(
        "/healthy",
        operation_id="healthy",
        response_class=Response,
        tags=["Bridge"],
        summary="The bridge's liveness check: 200 while the process runs.",
    )
    async def healthy() -> Response:
        return Response(status_code=200)

    @app.get(
        "/ready",
        operation_id="ready",
        response_class=Response,
        tags=["Bridge"],
        summary="The bridge's readiness check: 200 when ready, else 500.",
    )
    async def ready() -> Response:
        return Response(status_code=200 if service.readiness()["ready"] else 500)

    @app.get(
        "/metrics",
        operation_id="metrics",
        response_class=Response,
        tags=["Health"],
        summary="Prometheus metrics (fraudpipe_ingest_*).",
    )
    async def metrics() -> Response:
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get(
        "/",
        operation_id="info",
        response_class=Response,
        tags=["Bridge"],
        summary="Which bridge protocol this is.",
        response_model=openapi.BridgeInfo,
    )
    async def info() -> Response:
        return _reply(
            json_reply(
                200,
                {
                    "bridge_version": BRIDGE_VERSION,
                    "service": "fraudpipe ingest",
                    "version": _package_version(),
                    "pipeline": settings.pipeline,
                },
                b"application/json",
            )
        )

    @app.get("/openapi/v3", include_in_schema=False)
    async def openapi_v3() -> Response:
        return Response(json_reply(200, app.openapi()).body, media_type="application/json")

    # ------------------------------------------------------------------------- topic metadata

    @app.get(
        "/topics",
        operation_id="listTopics",
        response_class=Response,
        tags=["Topics"],
        summary="The topics of the cluster (internal ones left out).",
        responses=openapi.ok(openapi.TopicList),
    )
    async def list_topics() -> Response:
        view = await gateway.refresh()
        if not view.up:
            return _reply(error_reply(service.unavailable(gateway.down_reason or "Kafka is unavailable")))
        names = sorted(t for t in view.topics if not t.startswith("__"))
        return _reply(json_reply(200, names))

    async def _topic(topic: str):
        if await gateway.partition_count(topic) is None:
            raise BridgeError(404, "The specified topic was not found.")
        return gateway.view.topics[topic]

    async def _partition_of(topic: str, partition: int):
        info = await _topic(topic)
        if partition not in info.partitions:
            raise BridgeError(404, "The specified topic partition was not found.")
        return info.partitions[partition]

    def _partition(p: Any) -> dict[str, Any]:
        isr = set(p.isrs)
        return {
            "partition": p.id,
            "leader": p.leader,
            "replicas": [{"broker": b, "leader": b == p.leader, "in_sync": b in isr} for b in p.replicas],
        }

    @app.get(
        TOPIC_ROUTE,
        operation_id="getTopic",
        response_class=Response,
        tags=["Topics"],
        summary="A topic's configuration and partitions.",
        responses=openapi.ok(openapi.TopicMetadata, 404),
    )
    async def get_topic(topicname: str) -> Response:
        try:
            info = await _topic(topicname)
            configs = await gateway.describe_configs(topicname)
        except BridgeError as exc:
            return _reply(error_reply(exc))
        except Exception as exc:  # noqa: BLE001 - the admin request failed: Kafka is the problem
            return _reply(error_reply(service.unavailable(str(exc))))
        parts = [_partition(info.partitions[i]) for i in sorted(info.partitions)]
        return _reply(json_reply(200, {"name": topicname, "configs": configs, "partitions": parts}))

    @app.get(
        "/topics/{topicname}/partitions",
        operation_id="listPartitions",
        response_class=Response,
        tags=["Topics"],
        summary="A topic's partitions.",
        responses=openapi.ok(openapi.PartitionList, 404),
    )
    async def list_partitions(topicname: str) -> Response:
        try:
            info = await _topic(topicname)
        except BridgeError as exc:
            return _reply(error_reply(exc))
        return _reply(json_reply(200, [_partition(info.partitions[i]) for i in sorted(info.partitions)]))

    @app.get(
        PARTITION_ROUTE,
        operation_id="getPartition",
        response_class=Response,
        tags=["Topics"],
        summary="One partition's leader and replicas.",
        responses=openapi.ok(openapi.PartitionMetadata, 404),
    )
    async def get_partition(topicname: str, partitionid: int) -> Response:
        try:
            return _reply(json_reply(200, _partition(await _partition_of(topicname, partitionid))))
        except BridgeError as exc:
            return _reply(error_reply(exc))

    @app.get(
        PARTITION_ROUTE + "/offsets",
        operation_id="getOffsets",
        response_class=Response,
        tags=["Topics"],
        summary="First and next offsets of a partition.",
        responses=openapi.ok(openapi.OffsetsSummary, 404),
    )
    async def get_offsets(topicname: str, partitionid: int) -> Response:
        try:
            await _partition_of(topicname, partitionid)
        except BridgeError as exc:
            return _reply(error_reply(exc))
        try:
            first, end = await gateway.watermarks(topicname, partitionid)
        except Exception as exc:  # noqa: BLE001
            return _reply(error_reply(service.unavailable(str(exc))))
        return _reply(json_reply(200, {"beginning_offset": first, "end_offset": end}))

    # ------------------------------------------------------------------------------ produce

    async def _body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            raise service.too_large(int(length))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body_bytes:
                raise service.too_large(size)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _produce(request: Request, endpoint: str, name: str, partition: str | None) -> Response:
        try:
            body = await _body(request)
        except BridgeError as exc:
            return _reply(error_reply(exc, JSON if endpoint.startswith("/v1/") else KAFKA_JSON))
        reply = await service.dispatch(
            endpoint, name, partition, request.headers.get("content-type"), request.url.query, body
        )
        return _reply(reply)

    @app.post(
        TOPIC_ROUTE,
        operation_id="send",
        response_class=Response,
        tags=["Producer"],
        summary="Send records to a topic (the bridge's `send`).",
        openapi_extra=openapi.produce_body("ProducerRecordList"),
        responses=openapi.produce_responses(),
    )
    async def send_records(request: Request, topicname: str) -> Response:
        return await _produce(request, TOPIC_ROUTE, topicname, None)

    @app.post(
        PARTITION_ROUTE,
        operation_id="sendToPartition",
        response_class=Response,
        tags=["Producer"],
        summary="Send records to one partition (`sendToPartition`).",
        openapi_extra=openapi.produce_body("ProducerRecordToPartitionList"),
        responses=openapi.produce_responses(),
    )
    async def send_to_partition(request: Request, topicname: str, partitionid: str) -> Response:
        return await _produce(request, PARTITION_ROUTE, topicname, partitionid)

    @app.post(
        "/v1/transactions",
        operation_id="sendTransactions",
        response_class=Response,
        tags=["Pipeline"],
        summary="Send card transactions (one object or an array).",
        openapi_extra=openapi.records_body("transaction"),
        responses=openapi.records_responses(),
    )
    async def post_transactions(request: Request) -> Response:
        return await _produce(request, "/v1/transactions", "transactions", None)

    @app.post(
        "/v1/labels",
        operation_id="sendLabels",
        response_class=Response,
        tags=["Pipeline"],
        summary="Send fraud labels (one object or an array).",
        openapi_extra=openapi.records_body("label"),
        responses=openapi.records_responses(),
    )
    async def post_labels(request: Request) -> Response:
        return await _produce(request, "/v1/labels", "labels", None)

    # ------------------------------------------------------------------- what is not served

    not_served = ["GET", "POST", "PUT", "DELETE"]

    @app.api_route("/consumers/{rest:path}", methods=not_served, include_in_schema=False)
    async def consumers(rest: str) -> Response:
        return _bridge_error(
            501,
            "The consumer API is not served by fraudpipe ingest: read the topics with a "
            "Kafka consumer, or use the Strimzi Kafka Bridge",
        )

    @app.api_route("/admin/{rest:path}", methods=not_served, include_in_schema=False)
    async def admin(rest: str) -> Response:
        return _bridge_error(
            501,
            "fraudpipe ingest creates no topics: the operator creates the pipeline's topics "
            "(Strimzi KafkaTopics); elsewhere create them with kafka-topics.sh",
        )

    app.openapi = openapi.customize(app)  # type: ignore[method-assign]
    return app


SETTINGS_ENV = "FRAUDPIPE_INGEST_SETTINGS"


def app_from_environment() -> IngestApp:
    """uvicorn factory of each worker process (`--workers N`): settings from $FRAUDPIPE_INGEST_SETTINGS."""
    import os

    return create_app(IngestSettings.from_json(os.environ[SETTINGS_ENV]))


def create_app(settings: IngestSettings, service: IngestService | None = None) -> IngestApp:
    """The ASGI app to serve (uvicorn `factory` or `fraudpipe ingest run`)."""
    service = service or IngestService(settings)
    return IngestApp(service, build_api(service))
