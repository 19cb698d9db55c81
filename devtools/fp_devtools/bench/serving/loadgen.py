"""HTTP load generator, run as its own process: `python -m fp_devtools.bench.serving.loadgen`.

A small HTTP/1.1 keep-alive client on asyncio protocols (uvloop when present), so that the
generator spends a few tens of microseconds per request and leaves the shared CPU to the
server under test. Two modes:

- `--rate R`: open loop, one request every 1/R s whatever the answers do; latency counts from
  the scheduled send time, so a stalled server cannot hide its queueing (no coordinated
  omission). A new connection is opened whenever none is idle.
- `--connections C` without a rate: closed loop, C connections sending back to back.

Prints one JSON object: requests, errors by status, rows/s, latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter, deque
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

# uvloop's loop.time() ticks in whole milliseconds: time requests with the precise clock.
now = time.perf_counter

MAX_OPEN_LOOP_CONNECTIONS = 512


class HTTPConnection(asyncio.Protocol):
    """One keep-alive connection; `request` sends pre-encoded bytes and awaits the status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        status = self._complete_response()
        if status is not None and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def _complete_response(self) -> int | None:
        """The status once a whole response is buffered (then consumed), else None."""
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(self.buffer[:head_end]).lower()
        status = int(head[9:12])
        start = head_end + 4
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else None])
            if len(self.buffer) - start < length:
                return None
            del self.buffer[: start + length]
            return status
        if b"transfer-encoding: chunked" in head:
            pos = start
            while True:
                size_end = self.buffer.find(b"\r\n", pos)
                if size_end < 0:
                    return None
                size = int(bytes(self.buffer[pos:size_end]).split(b";")[0], 16)
                chunk_end = size_end + 2 + size + 2
                if len(self.buffer) < chunk_end:
                    return None
                pos = chunk_end
                if size == 0:
                    del self.buffer[:pos]
                    return status
        del self.buffer[:start]  # no body (e.g. 204)
        return status

    async def request(self, payload: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        try:
            return await self.waiter
        finally:
            self.waiter = None


def build_request(url: str, body: bytes, content_type: str = "application/json") -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    )
    return host, port, head.encode() + body


async def _connect(host: str, port: int) -> HTTPConnection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(HTTPConnection, host, port)
    return conn


class Recorder:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()

    def record(self, status: str, latency: float) -> None:
        self.statuses[status] += 1
        if status == "200":
            self.latencies.append(latency)


async def run_open_loop(host: str, port: int, payload: bytes, rate: float, duration: float) -> tuple[Recorder, float]:
    loop = asyncio.get_running_loop()
    rec = Recorder()
    idle: deque[HTTPConnection] = deque([await _connect(host, port) for _ in range(4)])
    opened = len(idle)
    pending: set[asyncio.Task[None]] = set()

    async def one(scheduled: float) -> None:
        nonlocal opened
        conn = idle.popleft() if idle else None
        if conn is None:
            opened += 1
            conn = await _connect(host, port)
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
        task = loop.create_task(one(scheduled))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=30)
    return rec, now() - t0


async def run_closed_loop(
    host: str, port: int, payload: bytes, connections: int, duration: float
) -> tuple[Recorder, float]:
    rec = Recorder()
    conns = [await _connect(host, port) for _ in range(connections)]
    t0 = now()
    deadline = t0 + duration

    async def worker(conn: HTTPConnection) -> None:
        while now() < deadline:
            sent = now()
            try:
                status = await conn.request(payload)
            except (ConnectionError, OSError):
                rec.record("conn_error", now() - sent)
                return
            rec.record(str(status), now() - sent)

    await asyncio.gather(*(worker(c) for c in conns))
    return rec, now() - t0


def summarize(rec: Recorder, elapsed: float, rows_per_request: int) -> dict:
    lat_ms = np.asarray(rec.latencies) * 1000.0
    ok = len(lat_ms)
    total = sum(rec.statuses.values())
    pct = np.percentile(lat_ms, [50, 95, 99, 100]) if ok else [float("nan")] * 4
    return {
        "requests": total,
        "ok": ok,
        "errors": {k: v for k, v in rec.statuses.items() if k != "200"},
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(ok / elapsed, 1),
        "rows_per_s": round(ok * rows_per_request / elapsed, 1),
        "p50_ms": round(float(pct[0]), 3),
        "p95_ms": round(float(pct[1]), 3),
        "p99_ms": round(float(pct[2]), 3),
        "max_ms": round(float(pct[3]), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTP load generator (JSON result on stdout)")
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:3000/score")
    parser.add_argument("--body-file", required=True, type=Path, help="request body (JSON)")
    parser.add_argument("--rows-per-request", type=int, default=1)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds")
    parser.add_argument("--rate", type=float, help="open loop at this many requests/s")
    parser.add_argument("--connections", type=int, default=16, help="closed loop connections")
    args = parser.parse_args(argv)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    host, port, payload = build_request(args.url, args.body_file.read_bytes())
    started = time.time()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        if args.rate:
            rec, elapsed = runner.run(run_open_loop(host, port, payload, args.rate, args.duration))
            mode = {"mode": "open_loop", "target_rate": args.rate}
        else:
            rec, elapsed = runner.run(run_closed_loop(host, port, payload, args.connections, args.duration))
            mode = {"mode": "closed_loop", "connections": args.connections}
    result = {
        **mode,
        **summarize(rec, elapsed, args.rows_per_request),
        "started_at": started,
        "client_cpu_s": round(time.process_time(), 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
