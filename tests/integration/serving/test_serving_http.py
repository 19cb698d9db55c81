"""The scoring service over real HTTP: scores, errors, readiness, metrics, refusal to start."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import xgboost as xgb
from prometheus_client.parser import text_string_to_metric_families

from fp_devtools.bench.serving.synthetic_model import synthetic_features
from fraudpipeline.features import FEATURE_NAMES

SERVICE = "fp_serving.service:FraudScorer"

pytestmark = pytest.mark.integration

INTEGER = {n for n in FEATURE_NAMES if n.startswith(("tx_during", "customer_nb", "terminal_nb"))}


def rows(n: int, seed: int = 11) -> list[dict]:
    x = synthetic_features(n, seed)
    return [{k: (int(v) if k in INTEGER else float(v)) for k, v in zip(FEATURE_NAMES, r)} for r in x]


def expected(booster_file, batch: list[dict]) -> np.ndarray:
    booster = xgb.Booster(model_file=str(booster_file))
    x = np.array([[r[k] for k in FEATURE_NAMES] for r in batch], dtype=np.float32)
    return booster.inplace_predict(x)


def test_score_one(service):
    row = rows(1)[0]
    resp = httpx.post(service["url"] + "/score", json=row)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"fraud_probability", "is_fraud", "model_version"}
    assert body["model_version"] == service["tag"].split(":")[1]
    assert body["fraud_probability"] == pytest.approx(float(expected(service["booster_file"], [row])[0]), abs=1e-6)
    assert body["is_fraud"] == (body["fraud_probability"] >= 0.5)


def test_score_batch_in_order_and_equal_to_single(service):
    batch = rows(300, seed=3)
    resp = httpx.post(service["url"] + "/score_batch", json={"rows": batch}, timeout=30)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert len(results) == 300
    probs = np.array([r["fraud_probability"] for r in results])
    np.testing.assert_allclose(probs, expected(service["booster_file"], batch), atol=1e-6)
    assert [r["is_fraud"] for r in results] == [p >= 0.5 for p in probs]
    single = httpx.post(service["url"] + "/score", json=batch[7]).json()
    assert single == results[7]


def test_concurrent_batches_are_merged_and_answered_separately(service):
    """Adaptive batching: concurrent requests share model calls, each gets its own rows back."""
    import asyncio

    batches = [rows(50, seed=100 + i) for i in range(12)]

    async def go():
        async with httpx.AsyncClient(base_url=service["url"], timeout=30) as client:
            return await asyncio.gather(*(client.post("/score_batch", json={"rows": b}) for b in batches))

    for batch, resp in zip(batches, asyncio.run(go())):
        assert resp.status_code == 200
        probs = [r["fraud_probability"] for r in resp.json()["results"]]
        np.testing.assert_allclose(probs, expected(service["booster_file"], batch), atol=1e-6)


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/score", {"tx_amount": -3}, "tx_amount"),
        ("/score", "missing", "terminal_risk_30day"),
        ("/score", "extra", "merchant"),
        ("/score", "string", "customer_avg_amount_7day"),
        ("/score_batch", "batch_bad_row", "rows.2.terminal_risk_7day"),
        ("/score_batch", {"rows": []}, "rows"),
        ("/score_batch", {"row": []}, "rows"),
        ("/score", "huge_count", "customer_nb_tx_1day"),
        ("/score_batch", "batch_huge_count", "rows.1.customer_nb_tx_1day"),
        ("/score", "float32_overflow", "tx_amount"),
    ],
)
def test_bad_input_is_422_naming_the_field(service, path, payload, field):
    good = rows(3)
    if payload == "huge_count":  # issue 16: a 401-digit count passed validation, then a 500
        payload = {**good[0], "customer_nb_tx_1day": int("9" * 401)}
    elif payload == "batch_huge_count":
        payload = {"rows": [good[0], {**good[1], "customer_nb_tx_1day": int("9" * 401)}]}
    elif payload == "float32_overflow":
        payload = {**good[0], "tx_amount": 1e39}
    elif payload == "missing":
        payload = {k: v for k, v in good[0].items() if k != "terminal_risk_30day"}
    elif payload == "extra":
        payload = {**good[0], "merchant": "acme"}
    elif payload == "string":
        payload = {**good[0], "customer_avg_amount_7day": "lots"}
    elif payload == "batch_bad_row":
        payload = {"rows": [good[0], good[1], {**good[2], "terminal_risk_7day": 7}]}
    resp = httpx.post(service["url"] + path, json=payload)
    assert resp.status_code == 422, resp.text
    fields = [d["field"] for d in resp.json()["detail"]]
    assert field in fields


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94.", "application/vnd.bentoml+pickle", 415),
        (b"tx_amount=3", "application/x-www-form-urlencoded", 415),
        (b"{}", "text/plain", 415),
        (b"not json", "application/json", 422),
        (b"", "application/json", 422),
        (b"[1, 2, 3]", "application/json", 422),
        (b'{"tx_amount": 1e999}', "application/json", 422),
    ],
)
def test_pickle_and_garbage_are_rejected_never_500(service, content, content_type, status):
    for path in ("/score", "/score_batch"):
        resp = httpx.post(service["url"] + path, content=content, headers={"content-type": content_type})
        assert resp.status_code == status, (path, resp.text)
        assert resp.json()["detail"], resp.text


def test_a_hostile_request_never_fails_another_client(service):
    """Valid and hostile batches at once: the batcher merges them, each gets its own answer."""
    import asyncio

    valid = [rows(40, seed=300 + i) for i in range(16)]
    hostile = [
        {"rows": [*rows(3, seed=400 + i), {**rows(1)[0], "customer_nb_tx_1day": int("9" * 401)}]} for i in range(16)
    ]

    async def go():
        async with httpx.AsyncClient(base_url=service["url"], timeout=30) as client:
            calls = [client.post("/score_batch", json={"rows": b}) for b in valid]
            calls += [client.post("/score_batch", json=h) for h in hostile]
            return await asyncio.gather(*calls)

    answers = asyncio.run(go())
    for batch, resp in zip(valid, answers[:16]):
        assert resp.status_code == 200, resp.text
        probs = [r["fraud_probability"] for r in resp.json()["results"]]
        np.testing.assert_allclose(probs, expected(service["booster_file"], batch), atol=1e-6)
    for resp in answers[16:]:
        assert resp.status_code == 422 and resp.json()["detail"][0]["field"] == "rows.3.customer_nb_tx_1day"


def test_model_info(service):
    info = httpx.get(service["url"] + "/v1/model").json()
    assert info["tag"] == service["tag"]
    assert info["features"] == FEATURE_NAMES
    assert info["threshold"] == 0.5 and info["threshold_source"] == "model"
    assert {"auc", "ap"} <= set(info["metrics"]) and info["synthetic"] is True
    assert set(info["train_window"]) >= {"start", "end", "delay_days", "test_start", "test_end"}


def test_health_endpoints(service):
    assert httpx.get(service["url"] + "/livez").status_code == 200
    assert httpx.get(service["url"] + "/readyz").status_code == 200


def _samples(url: str) -> dict:
    text = httpx.get(url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_what_was_served(service):
    url = service["url"]
    before = _samples(url)
    for row in rows(5, seed=21):
        assert httpx.post(url + "/score", json=row).status_code == 200
    httpx.post(url + "/score_batch", json={"rows": rows(20, seed=22)})
    httpx.post(url + "/score", json={"tx_amount": -1})
    after = _samples(url)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("fraudpipe_serving_requests_total", endpoint="/score", status="200") == 5
    assert delta("fraudpipe_serving_requests_total", endpoint="/score_batch", status="200") == 1
    assert delta("fraudpipe_serving_requests_total", endpoint="/score", status="422") == 1
    assert delta("fraudpipe_serving_request_duration_seconds_count", endpoint="/score") == 6
    assert delta("fraudpipe_serving_rows_scored_total", endpoint="/score_batch") == 20
    assert delta("fraudpipe_serving_fraud_probability_count") == 25
    decided = delta("fraudpipe_serving_decisions_total", decision="fraud") + delta(
        "fraudpipe_serving_decisions_total", decision="legit"
    )
    assert decided == 25
    info = {k: v for k, v in after.items() if k[0] == "fraudpipe_serving_model_info"}
    assert list(info.values()) == [1.0]
    assert ("model_tag", service["tag"]) in next(iter(info))[1]


def test_readiness_follows_the_model(model_store, tmp_path, launch):
    """From process start: /readyz is never 200 unless /v1/model already serves the model."""
    server, url = launch(model_store, tmp_path)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.proc.poll() is None, server.log_tail()
            try:
                ready = httpx.get(url + "/readyz", timeout=2).status_code
                model = httpx.get(url + "/v1/model", timeout=2).status_code
            except httpx.TransportError:
                seen.append("down")
                time.sleep(0.05)
                continue
            seen.append((ready, model))
            if ready == 200:
                break
        assert seen and seen[-1] == (200, 200), seen[-5:]
        assert all(s == "down" or s[0] != 200 or s[1] == 200 for s in seen)
    finally:
        server.stop()


def test_threshold_override_and_two_workers(model_store, tmp_path, launch):
    server, url = launch(model_store, tmp_path, FRAUDPIPE_THRESHOLD="0", FRAUDPIPE_WORKERS="2")
    try:
        server.wait_ready(url + "/readyz", deadline_s=120)
        info = httpx.get(url + "/v1/model").json()
        assert (info["threshold"], info["threshold_source"]) == (0.0, "env")
        results = httpx.post(url + "/score_batch", json={"rows": rows(10)}).json()["results"]
        assert all(r["is_fraud"] for r in results)
        assert len([p for p in server.worker_pids()]) >= 2
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "FRAUDPIPE_MODEL_TAG is not set"),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:doesnotexist"}, "is not in the BentoML model store"),
        ({"FRAUDPIPE_MODEL_TAG": "fraud-xgb:latest"}, "pin the version"),
        ({"FRAUDPIPE_THRESHOLD": "2"}, "FRAUDPIPE_THRESHOLD"),
    ],
)
def test_refuses_to_start_with_a_clear_message(model_store, store_env, env, message):
    full_env = store_env(model_store["home"])
    if "FRAUDPIPE_MODEL_TAG" not in env and env:
        full_env["FRAUDPIPE_MODEL_TAG"] = model_store["tag"]
    full_env.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", "127.0.0.1", "--port", "0"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "refusing to start" in done.stderr and message in done.stderr, done.stderr[-2000:]
