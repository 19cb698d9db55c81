"""HTTP load for the ingest benchmark, run as its own process: `python -m fp_devtools.bench.ingest.loadgen`.

The serving benchmark's keep-alive client (`fp_devtools.bench.serving.loadgen`: asyncio protocols,
uvloop, open loop timed from the scheduled send, no coordinated omission), sending a cycle of
pre-encoded requests instead of one, so that records carry many cards (keys) and spread over the
partitions as real traffic does, with any Content-Type.

Prints one JSON object: requests, errors by status, records/s, latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

from fp_devtools.bench.serving.loadgen import MAX_OPEN_LOOP_CONNECTIONS, HTTPConnection, Recorder, now, summarize


def build_requests(url: str, bodies: list[bytes], content_type: str) -> tuple[str, int, list[bytes]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    payloads = [
        (
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]
    return host, port, payloads


async def _connect(host: str, port: int) -> HTTPConnection:
    _, conn = await asyncio.get_running_loop().create_connection(HTTPConnection, host, port)
    return conn


async def open_loop(
    host: str, port: int, payloads: list[bytes], rate: float, duration: float
) -> tuple[Recorder, float]:
    loop = asyncio.get_running_loop()
    rec = Recorder()
    idle: deque[HTTPConnection] = deque([await _connect(host, port) for _ in range(4)])
    pending: set[asyncio.Task[None]] = set()

    async def one(payload: bytes, scheduled: float) -> None:
        conn = idle.popleft() if idle else await _connect(host, port)
        try:
            status = await conn.request(payload)
            rec.record(str(status), now() - scheduled)
        except (ConnectionError, OSError):
            rec.record("conn_error", now() - scheduled)
            return
        if not conn.closed:
            idle.append(conn)

    n = int(rate * duration)
    t0 = now() + 0.01
    for i in range(n):
        scheduled = t0 + i / rate
        delay = scheduled - now()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(pending) >= MAX_OPEN_LOOP_CONNECTIONS:
            rec.record("client_saturated", 0.0)
            continue
        task = loop.create_task(one(payloads[i % len(payloads)], scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=30)
    return rec, now() - t0


async def closed_loop(
    host: str, port: int, payloads: list[bytes], connections: int, duration: float
) -> tuple[Recorder, float]:
    rec = Recorder()
    conns = [await _connect(host, port) for _ in range(connections)]
    t0 = now()
    deadline = t0 + duration

    async def worker(index: int, conn: HTTPConnection) -> None:
        i = index
        while now() < deadline:
            sent = now()
            try:
                status = await conn.request(payloads[i % len(payloads)])
            except (ConnectionError, OSError):
                rec.record("conn_error", now() - sent)
                return
            rec.record(str(status), now() - sent)
            i += connections

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    return rec, now() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTP load generator for the ingest benchmark (JSON on stdout)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, type=Path, help="JSON list of request bodies (strings), cycled")
    parser.add_argument("--content-type", required=True)
    parser.add_argument("--records-per-request", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s")
    parser.add_argument("--connections", type=int, default=16, help="closed loop connections")
    args = parser.parse_args(argv)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    bodies = [b.encode() for b in json.loads(args.bodies.read_text())]
    host, port, payloads = build_requests(args.url, bodies, args.content_type)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        if args.rate:
            rec, elapsed = runner.run(open_loop(host, port, payloads, args.rate, args.duration))
            mode = {"mode": "open_loop", "target_rate": args.rate}
        else:
            rec, elapsed = runner.run(closed_loop(host, port, payloads, args.connections, args.duration))
            mode = {"mode": "closed_loop", "connections": args.connections}
    out = {**mode, **summarize(rec, elapsed, args.records_per_request), "client_cpu_s": round(time.process_time(), 3)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
