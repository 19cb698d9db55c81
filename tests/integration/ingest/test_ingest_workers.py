"""`fraudpipe ingest run --workers 2`: two processes on one port, each with its own producer; every
record acknowledged once, and /metrics sums both workers whichever one answers the scrape."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from ingest_support import IngestProcess, read_topic, transaction

pytestmark = pytest.mark.integration


def test_two_workers_share_the_port_and_the_metrics(pipeline, tmp_path):
    service = IngestProcess(pipeline["file"], pipeline["bootstrap"], tmp_path / "ingest.log", "--workers", "2")
    service.start()
    try:
        batches = [[transaction(70_000 + 10 * b + i) for i in range(10)] for b in range(40)]

        def post(batch: list[dict]) -> int:
            with httpx.Client(base_url=service.url, timeout=30) as http:  # a new connection each time
                return http.post("/v1/transactions", json=batch).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(post, batches)) == [200] * len(batches)
        topic = pipeline["topics"]["transactions"]
        sent = {tx["transaction_id"] for batch in batches for tx in batch}
        held = [json.loads(r.value)["transaction_id"] for r in read_topic(pipeline["bootstrap"], topic)]
        assert sent <= set(held)
        assert len([t for t in held if t in sent]) == len(sent)  # none twice
        for _ in range(6):  # whichever worker answers, the counts are the sum of both
            text = httpx.get(service.url + "/metrics", timeout=10).text
            line = next(
                x
                for x in text.splitlines()
                if x.startswith("fraudpipe_ingest_records_total{")
                and 'outcome="acked"' in x
                and f'topic="{topic}"' in x
            )
            assert float(line.split()[-1]) == len(sent)
            assert "fraudpipe_ingest_kafka_up 1.0" in text
    finally:
        log = service.log_tail()
        service.stop()
    assert "Started parent process" in log
