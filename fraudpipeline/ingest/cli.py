"""`fraudpipe ingest run`: the HTTP front door to a FraudPipeline's Kafka topics, as its own process."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="The ingest API: the Strimzi Kafka Bridge produce protocol and /v1 over one Kafka producer.",
    no_args_is_help=True,
)


def _producer_config(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(
                f"{pair!r}: write librdkafka settings as NAME=VALUE, e.g. compression.type=lz4",
                param_hint="--producer-config",
            )
        out[name.strip()] = value.strip()
    return out


def _dev_bootstrap() -> str | None:
    """The broker of `fraudpipe dev up` in this folder, if any (as `fraudpipe replay` finds it)."""
    import json

    env = Path(".fraudpipe/dev/env.json")
    if env.is_file():
        return (json.loads(env.read_text()).get("kafka") or {}).get("bootstrap")
    return None


@app.command("run")
def run(
    pipeline_file: Annotated[
        Path,
        typer.Option("-f", "--file", help="FraudPipeline YAML: which topics to write to.", exists=True, dir_okay=False),
    ],
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            help="Kafka host:port. Default: the broker of `fraudpipe dev up` (.fraudpipe/dev/env.json) if there is "
            "one, else the spec's kafka.bootstrapServers (its in-cluster address)."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port. Default: the spec's kafka.bridge.port (8080).", min=1, max=65535)
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body; larger is 413.", min=1024)] = 1 << 20,
    max_records: Annotated[int, typer.Option(help="Most records in one request; more is 413.", min=1)] = 1_000,
    delivery_timeout_ms: Annotated[
        int,
        typer.Option(help="How long a request waits for the broker's acknowledgements before answering 503.", min=100),
    ] = 10_000,
    linger_ms: Annotated[float, typer.Option(help="librdkafka linger.ms: batching delay before sending.", min=0)] = 1.0,
    record_timestamp: Annotated[
        str,
        typer.Option(
            help="Kafka timestamp of /v1 records: received (when this service took them) or event (a transaction's "
            "own time; for live traffic only: the topic's retention deletes older records at once)."
        ),
    ] = "received",
    producer_config: Annotated[
        list[str] | None,
        typer.Option("--producer-config", "-X", help="Extra librdkafka producer setting NAME=VALUE (repeatable)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes, each with its own producer (one Python process uses one core at most).",
            min=1,
            max=32,
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
) -> None:
    """Serve the Strimzi Kafka Bridge produce API and POST /v1/transactions, /v1/labels until stopped."""
    import asyncio

    import uvicorn
    from rich.console import Console

    from fraudpipeline.ingest.app import create_app
    from fraudpipeline.ingest.kafka import Gateway
    from fraudpipeline.ingest.settings import IngestSettings
    from fraudpipeline.spec import SpecError

    err = Console(stderr=True)
    if record_timestamp not in ("received", "event"):
        raise typer.BadParameter(f"{record_timestamp!r}: choose received or event", param_hint="--record-timestamp")
    try:
        settings = IngestSettings.from_file(
            pipeline_file,
            bootstrap_servers=bootstrap_servers or _dev_bootstrap(),
            port=port,
            host=host,
            max_body_bytes=max_body_bytes,
            max_records=max_records,
            delivery_timeout_ms=delivery_timeout_ms,
            linger_ms=linger_ms,
            record_timestamp=record_timestamp,
            producer_config=_producer_config(producer_config or []),
        )
    except SpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="-f") from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def preflight() -> tuple[bool, dict[str, bool]]:
        gateway = Gateway(settings.bootstrap_servers, metadata_max_wait_ms=5_000)
        await gateway.start()
        try:
            return gateway.up, {t: t in gateway.view.topics for t in settings.topics.values()}
        finally:
            await gateway.stop(0)

    with err.status(f"checking Kafka at {settings.bootstrap_servers} ...", spinner="dots"):
        up, topics = asyncio.run(preflight())
    if not up:
        err.print(
            f"[yellow]warning:[/] no Kafka broker answers at {settings.bootstrap_servers}; serving anyway: "
            "produce requests get 503 and /readyz fails until it does"
        )
    for role, topic in settings.topics.items():
        if up and not topics[topic]:
            err.print(
                f"[yellow]warning:[/] the {role} topic {topic} does not exist; this service creates none "
                "(on Kubernetes the operator does): /v1/" + role + " answers 503 until it exists"
            )
    err.print(
        f"[green]fraudpipe ingest[/] ({workers} worker{'s' if workers > 1 else ''}) for {settings.pipeline} "
        f"on http://{settings.host}:{settings.port} "
        f"-> Kafka {settings.bootstrap_servers}: /v1/transactions -> {settings.topics['transactions']}, "
        f"/v1/labels -> {settings.topics['labels']}, /topics/{{topic}} (Strimzi Kafka Bridge API). "
        "Ctrl-C stops.",
        highlight=False,
    )
    server = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": max(5, settings.delivery_timeout_ms // 1000 + 2),
    }
    if workers == 1:
        uvicorn.Server(uvicorn.Config(create_app(settings), **server)).run()
        return
    # Several processes on one listening socket, each with its own producer; metrics summed over
    # them through prometheus_client's multiprocess files (the directory must exist before they start).
    import os
    import shutil
    import tempfile

    from fraudpipeline.ingest.app import SETTINGS_ENV
    from fraudpipeline.ingest.metrics import MULTIPROCESS_ENV

    metrics_dir = tempfile.mkdtemp(prefix="fraudpipe-ingest-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    os.environ[SETTINGS_ENV] = settings.to_json()
    try:
        # (a worker imports this command's module tree first: give it more than uvicorn's 5 s to come up)
        uvicorn.run(
            "fraudpipeline.ingest.app:app_from_environment",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=60,
            **server,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
