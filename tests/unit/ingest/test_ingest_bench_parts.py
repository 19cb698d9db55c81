"""`fraudpipe bench ingest` without a broker: request bodies, targets, the load generator's requests."""

from __future__ import annotations

import json

from fp_devtools.bench.ingest.loadgen import build_requests
from fp_devtools.bench.ingest.runner import BATCH, _bodies, _transactions, scenarios, targets
from fraudpipeline.ingest.bridge import decode
from fraudpipeline.transactions import parse_transaction


def test_bodies_are_valid_requests_with_many_cards(tmp_path):
    txs = _transactions(2_000)
    files = _bodies(tmp_path, txs)
    single = json.loads(files[("bridge", 1)].read_text())
    batch = json.loads(files[("bridge", BATCH)].read_text())
    assert len(single) == len(batch) == 1000
    records = decode(batch[0].encode(), "application/vnd.kafka.json.v2+json", None)
    assert len(records) == BATCH
    assert len({r[0] for r in records}) > 50  # keys spread over many cards, so over the partitions
    for tx in json.loads(json.loads(files[("v1", BATCH)].read_text())[0]):
        parse_transaction(tx)  # /v1 bodies pass validation


def test_scenarios_cover_the_issue_targets():
    names = {s.name for s in scenarios(32)}
    assert {"bridge-single@1000", "bridge-single@max", f"bridge-batch{BATCH}@max", "kafka-producer@max"} <= names


def test_targets_judge_the_right_rows():
    rows = [
        {"name": "bridge-single@max", "requests_per_s": 2600.0, "records_per_s": 2600.0, "p99_ms": 30, "errors": {}},
        {
            "name": f"bridge-batch{BATCH}@max",
            "requests_per_s": 500,
            "records_per_s": 50_000.0,
            "p99_ms": 9,
            "errors": {},
        },
        {
            "name": "bridge-single@1000",
            "requests_per_s": 1000,
            "records_per_s": 1000,
            "p99_ms": 12.0,
            "errors": {"503": 1},
        },
    ]
    out = targets(rows)
    assert [t["met"] for t in out.values()] == [True, False, False]  # errors at 1,000/s fail the latency target


def test_load_generator_requests_carry_the_content_type_and_length():
    host, port, payloads = build_requests(
        "http://127.0.0.1:8080/topics/t?async=false", [b"{}", b'{"a":1}'], "application/vnd.kafka.json.v2+json"
    )
    assert (host, port) == ("127.0.0.1", 8080)
    assert payloads[1].startswith(b"POST /topics/t?async=false HTTP/1.1\r\n")
    assert b"Content-Type: application/vnd.kafka.json.v2+json\r\nContent-Length: 7\r\n" in payloads[1]
    assert payloads[1].endswith(b'\r\n\r\n{"a":1}')
