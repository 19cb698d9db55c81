"""A broker stopped mid-stream: 503 with Retry-After while it is gone, never a 200 for a record it
does not hold; after it returns, the service recovers by itself, and every record ever answered
200 is in the topic (counted from what the broker holds)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import httpx
import pytest
from ingest_support import IngestProcess, create_topic, pipeline_yaml, read_topic, transaction

from fp_devtools import kafka as dev_kafka
from fp_devtools.process import stop

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(kafka, tmp_path):
    """A broker of this test's own (the session's is shared): stoppable, restartable with its data.

    Depends on `kafka` so that a machine that cannot run Kafka skips (or, under CI, fails) the same way.
    """
    state = tmp_path / "broker"
    env = dev_kafka.start(state)
    broker = {
        "state": state,
        "bootstrap": env["kafka"]["bootstrap"],
        "pid": env["pids"]["kafka"],
        "controller_port": env["kafka"]["controller_port"],
    }
    yield broker
    stop(broker["pid"])


class Sender(threading.Thread):
    """Posts 5 new transactions per request, back to back, and remembers every answer."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.acked: set[str] = set()
        self.refused: list[tuple[float, int, str | None]] = []  # (when, status, Retry-After)
        self.statuses: list[tuple[float, int]] = []
        self.halt = threading.Event()
        self.n = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.halt.is_set():
                batch = [transaction(self.n + i) for i in range(5)]
                self.n += 5
                try:
                    response = http.post("/v1/transactions", json=batch)
                except httpx.HTTPError:
                    continue
                now = time.monotonic()
                self.statuses.append((now, response.status_code))
                if response.status_code == 200:
                    self.acked.update(tx["transaction_id"] for tx in batch)
                else:
                    self.refused.append((now, response.status_code, response.headers.get("retry-after")))
                time.sleep(0.01)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_broker_stopped_mid_stream(own_broker, tmp_path):
    bootstrap = own_broker["bootstrap"]
    pipeline_file = tmp_path / "pipeline.yaml"
    pipeline_file.write_text(pipeline_yaml("outage", "fraud"))
    topic = create_topic(bootstrap, 3, "fraud.outage.transactions")
    create_topic(bootstrap, 3, "fraud.outage.labels")
    service = IngestProcess(pipeline_file, bootstrap, tmp_path / "ingest.log", "--delivery-timeout-ms", "3000").start()
    sender = Sender(service.url)
    try:
        sender.start()
        _wait(lambda: len(sender.acked) >= 200, 30, "records acknowledged before the outage")

        stop(own_broker["pid"])  # SIGTERM: the broker shuts down while requests are in flight
        stopped_at = time.monotonic()
        _wait(lambda: any(when > stopped_at for when, _, _ in sender.refused), 30, "a 503 after the broker stopped")
        time.sleep(3)
        ready = httpx.get(service.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert not ready.json()["kafka_up"]
        acked_while_down = len(sender.acked)

        env = dev_kafka.start(
            own_broker["state"], port=int(bootstrap.rsplit(":", 1)[1]), controller_port=own_broker["controller_port"]
        )
        own_broker["pid"] = env["pids"]["kafka"]
        back_at = time.monotonic()
        _wait(
            lambda: any(when > back_at and status == 200 for when, status in sender.statuses),
            60,
            "a 200 after the broker came back",
        )
        _wait(lambda: len(sender.acked) >= acked_while_down + 200, 60, "records acknowledged after the outage")
        assert httpx.get(service.url + "/readyz", timeout=10).status_code == 200
    finally:
        sender.halt.set()
        sender.join(30)
        log = service.log_tail()
        service.stop()

    codes = Counter(status for _, status, _ in sender.refused)
    assert set(codes) == {503}, (codes, log)
    assert all(retry_after is not None and int(retry_after) > 0 for _, _, retry_after in sender.refused)
    held = [r.value for r in read_topic(bootstrap, topic)]
    held_ids = {json.loads(v)["transaction_id"] for v in held}
    missing = sender.acked - held_ids
    assert not missing, f"{len(missing)} records answered 200 are not in the topic, e.g. {sorted(missing)[:5]}"
    # Idempotence: no record the broker acknowledged was written twice by the producer's retries.
    assert len(held) == len(held_ids)
