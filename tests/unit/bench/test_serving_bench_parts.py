"""Pieces of `fraudpipe bench serving` that can be checked without servers."""

from __future__ import annotations

import numpy as np

from fp_devtools.bench.serving.loadgen import HTTPConnection, Recorder, build_request, summarize
from fp_devtools.bench.serving.profile_summary import summarize_raw
from fp_devtools.bench.serving.runner import targets


def _feed(chunks):
    conn = HTTPConnection()
    statuses = []
    for chunk in chunks:
        conn.buffer += chunk
        status = conn._complete_response()
        while status is not None:
            statuses.append(status)
            status = conn._complete_response()
    return statuses, bytes(conn.buffer)


def test_response_parsing_content_length_split_and_pipelined():
    r1 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    r2 = b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-length: 2\r\n\r\n{}"
    statuses, rest = _feed([r1[:20], r1[20:] + r2[:10], r2[10:]])
    assert statuses == [200, 422] and rest == b""


def test_response_parsing_chunked():
    r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert _feed([r[:30], r[30:]]) == ([200], b"")


def test_request_bytes():
    host, port, payload = build_request("http://127.0.0.1:3000/score", b"{}")
    assert (host, port) == ("127.0.0.1", 3000)
    assert payload.startswith(b"POST /score HTTP/1.1\r\n") and payload.endswith(b"\r\n\r\n{}")
    assert b"Content-Length: 2\r\n" in payload


def test_summary_percentiles_and_errors():
    rec = Recorder()
    for ms in range(1, 101):
        rec.record("200", ms / 1000)
    rec.record("503", 0.5)
    out = summarize(rec, elapsed=2.0, rows_per_request=256)
    assert out["ok"] == 100 and out["errors"] == {"503": 1}
    assert out["rows_per_s"] == 100 * 256 / 2.0
    assert out["p50_ms"] == np.percentile(np.arange(1, 101), 50)
    assert out["p99_ms"] == round(float(np.percentile(np.arange(1, 101), 99)), 3)


def test_profile_summary_groups_by_component():
    raw = "\n".join(
        [
            "main (/x/lib/python3.11/asyncio/runners.py:1);inplace_predict (/v/lib/python3.11/site-packages/xgboost/core.py:2873) 30",  # noqa: E501
            "main (/x/lib/python3.11/asyncio/runners.py:1);model_validate_json (/v/lib/python3.11/site-packages/pydantic/main.py:1) 10",  # noqa: E501
            "main (/x/lib/python3.11/asyncio/runners.py:1) 10",
        ]
    )
    out = summarize_raw(raw)
    assert out["samples"] == 50
    assert out["self_time_pct_by_component"] == {
        "xgboost": 60.0,
        "pydantic": 20.0,
        "stdlib (asyncio, json, inspect...)": 20.0,
    }


def test_targets_verdicts():
    results = [
        {"name": "single@500", "p99_ms": 8.0, "rows_per_s": 500},
        {"name": "batch256@max", "rows_per_s": 120_000},
        {"name": "baseline-single@max", "rows_per_s": 2_000},
    ]
    out = targets(results)
    assert out["single@500 p99 <= 10 ms"]["met"]
    assert out["batch >= 100,000 rows/s"]["met"]
    assert out["batch256@max >= 5x baseline-single@max"] == {"value_x": 60.0, "met": True}
