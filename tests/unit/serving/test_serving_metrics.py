"""Metrics: bulk histogram observation equals one-by-one, decisions and model info are counted."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from fp_serving import metrics


def _hist(registry):
    return Histogram("h", "test", registry=registry, buckets=metrics.SCORE_BUCKETS)


def test_observe_many_equals_one_by_one():
    values = np.concatenate([np.random.default_rng(0).random(1000), [0.0, 0.01, 0.5, 1.0, 0.99]])
    one, many = CollectorRegistry(), CollectorRegistry()
    h1, h2 = _hist(one), _hist(many)
    for v in values:
        h1.observe(float(v))
    metrics.observe_many(h2, values)

    def samples(registry):
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for m in registry.collect()
            for s in m.samples
            if not s.name.endswith("_created")
        }

    a, b = samples(one), samples(many)
    assert a.pop(("h_sum", ())) == pytest.approx(b.pop(("h_sum", ())), rel=1e-12)
    assert a == b


def _value(name, labels=None):
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_record_scores_counts_rows_and_decisions():
    fraud0 = _value("fraudpipe_serving_decisions_total", {"decision": "fraud"})
    legit0 = _value("fraudpipe_serving_decisions_total", {"decision": "legit"})
    count0 = _value("fraudpipe_serving_fraud_probability_count")
    p = np.array([0.1, 0.2, 0.95], dtype=np.float32)
    metrics.record_scores(p, frauds=1)
    assert _value("fraudpipe_serving_decisions_total", {"decision": "fraud"}) - fraud0 == 1
    assert _value("fraudpipe_serving_decisions_total", {"decision": "legit"}) - legit0 == 2
    assert _value("fraudpipe_serving_fraud_probability_count") - count0 == 3


def test_model_info_and_exposition_names():
    metrics.set_model_info("fraud-xgb:v1", "v1", 0.42)
    assert (
        _value(
            "fraudpipe_serving_model_info", {"model_tag": "fraud-xgb:v1", "model_version": "v1", "threshold": "0.42"}
        )
        == 1
    )
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    types = {
        line.split()[2]: line.split()[3]
        for line in body.decode().splitlines()
        if line.startswith("# TYPE fraudpipe_serving_") and "_created " not in line
    }
    assert types == {
        "fraudpipe_serving_requests_total": "counter",
        "fraudpipe_serving_request_duration_seconds": "histogram",
        "fraudpipe_serving_rows_scored_total": "counter",
        "fraudpipe_serving_fraud_probability": "histogram",
        "fraudpipe_serving_decisions_total": "counter",
        "fraudpipe_serving_predict_batch_rows": "histogram",
        "fraudpipe_serving_model_info": "gauge",
        "fraudpipe_serving_gc_pause_seconds": "histogram",
    }
