"""The BentoML timeout-middleware fix: no timer outlives its request, timeouts still answer 504."""

from __future__ import annotations

import asyncio
import gc

import pytest
from bentoml._internal.server.http.traffic import TimeoutMiddleware

from fp_serving import bentoml_patches


async def _call(app, path="/"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "GET", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    return sent


async def fast_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def slow_app(scope, receive, send):
    await asyncio.sleep(0.5)
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def streaming_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.2)  # past the timeout, after the first byte: must not be cut
    await send({"type": "http.response.body", "body": b"late"})


@pytest.fixture(autouse=True)
def fixed():
    assert bentoml_patches.install()


def test_no_timer_left_after_requests():
    async def main():
        loop = asyncio.get_running_loop()
        mw = TimeoutMiddleware(fast_app, timeout=30)
        for _ in range(200):
            assert (await _call(mw))[0]["status"] == 200
        gc.collect()
        return [h for h in loop._scheduled if not h.cancelled()]

    assert asyncio.run(main()) == []


def test_timeout_still_answers_504():
    mw = TimeoutMiddleware(slow_app, timeout=0.05)
    sent = asyncio.run(_call(mw))
    assert sent[0]["status"] == 504


def test_streaming_after_first_byte_is_not_cut():
    mw = TimeoutMiddleware(streaming_app, timeout=0.05)
    sent = asyncio.run(_call(mw))
    assert [m.get("status") for m in sent][0] == 200 and sent[-1]["body"] == b"late"


def test_install_is_idempotent():
    assert bentoml_patches.install() and bentoml_patches.install()
