"""Schemathesis fuzzes the running `bentoml serve` from its own OpenAPI document (/docs.json).

Every generated request, valid (positive) or invalid (negative), must get no 5xx, a status the
document lists, a body that matches the document's schema for that status (so every 4xx is the
documented `ErrorResponse`), and valid data must be accepted, invalid data refused. While the
fuzzer runs, a second client keeps posting valid rows to both scoring endpoints and must see
every one scored: a hostile request never fails another client's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as oa_checks

from fp_devtools.bench.serving.synthetic_model import synthetic_features
from fraudpipeline.features import FEATURE_NAMES

pytestmark = pytest.mark.integration

# Each example is one request; positive and negative cases for every operation of the document.
MAX_EXAMPLES = 600
CHECKS = [
    schemathesis.checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
    oa_checks.negative_data_rejection,
    oa_checks.positive_data_acceptance,
]
INTEGER = {n for n in FEATURE_NAMES if n.startswith(("tx_during", "customer_nb", "terminal_nb"))}


def _valid_rows(n: int, seed: int) -> list[dict]:
    return [
        {k: (int(v) if k in INTEGER else float(v)) for k, v in zip(FEATURE_NAMES, r)}
        for r in synthetic_features(n, seed)
    ]


class ValidClient(threading.Thread):
    """Posts valid rows (single and batches of 50) until stopped; records every outcome."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop_event = threading.Event()
        self.statuses: Counter = Counter()
        self.rows_sent = self.rows_scored = 0
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            k = 0
            while not self.stop_event.is_set():
                k += 1
                batch = _valid_rows(50, seed=1_000 + k)
                for path, body, n in (("/score", batch[0], 1), ("/score_batch", {"rows": batch}, 50)):
                    try:
                        resp = client.post(path, json=body)
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{path}: {exc!r}")
                        continue
                    self.statuses[(path, resp.status_code)] += 1
                    self.rows_sent += n
                    if resp.status_code != 200:
                        self.failures.append(f"{path}: {resp.status_code} {resp.text[:200]}")
                        continue
                    got = 1 if path == "/score" else len(resp.json()["results"])
                    self.rows_scored += got
                time.sleep(0.005)


def test_fuzz_the_scoring_service_from_its_openapi_document(service):
    url = service["url"]
    schema = schemathesis.openapi.from_url(url + "/docs.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    strategies = [
        op.as_strategy(generation_mode=mode)
        for op in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if not (mode is GenerationMode.NEGATIVE and op.method.upper() == "GET")
    ]
    seen: Counter = Counter()
    failures: list[str] = []
    client = ValidClient(url)
    client.start()
    started = time.monotonic()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def fuzz(case):
        response = case.call(base_url=url, timeout=30)
        seen[(case.operation.method.upper(), case.operation.path, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all failures, report them together
            failures.append(
                f"{case.operation.method.upper()} {case.operation.path} -> {response.status_code}: "
                f"{str(exc)[:600]}\n  body sent: {str(case.body)[:300]}"
            )

    try:
        fuzz()
    finally:
        client.stop_event.set()
        client.join(timeout=60)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {sum(seen.values())} requests in {elapsed:.0f} s, by operation and status:")
    for key, count in sorted(seen.items()):
        print(f"  {key[0]} {key[1]} {key[2]}: {count}")
    print(
        f"valid client alongside: {client.rows_sent} rows sent, {client.rows_scored} scored, "
        f"statuses {dict(client.statuses)}"
    )
    assert not failures, f"{len(failures)} failing requests:\n" + "\n".join(failures[:20])
    assert not client.failures and client.rows_scored == client.rows_sent > 0, client.failures[:10]
    assert not any(status >= 500 for (_, _, status) in seen)
    assert {path for (_, path, _) in seen} >= {"/score", "/score_batch", "/v1/model"}
    assert any(status == 422 for (_, _, status) in seen) and any(status == 200 for (_, _, status) in seen)
