"""The live figures: Prometheus text parsed, counters turned into rates across resets."""

from __future__ import annotations

import math

from fp_local import figures, preflight

JOB = """\
# TYPE flink_taskmanager_job_task_operator_fraudpipe_scored gauge
flink_taskmanager_job_task_operator_fraudpipe_scored{job_id="a",subtask_index="0",op="f",} 120.0
flink_taskmanager_job_task_operator_fraudpipe_scored{job_id="a",subtask_index="1",op="f",} 80.0
flink_taskmanager_job_task_operator_fraudpipe_alerts{job_id="a",subtask_index="0",} 3.0
flink_taskmanager_job_task_operator_fraudpipe_dead_letters{job_id="a",subtask_index="0",} 1.0
flink_taskmanager_job_task_operator_fraudpipe_scoring_latency_ms{job_id="a",subtask_index="0",quantile="0.5",} 12.0
flink_taskmanager_job_task_operator_fraudpipe_scoring_latency_ms{job_id="a",subtask_index="1",quantile="0.5",} 14.0
flink_taskmanager_job_task_operator_fraudpipe_scoring_latency_ms{job_id="a",subtask_index="0",quantile="0.99",} 31.0
flink_taskmanager_job_task_operator_fraudpipe_scoring_latency_ms{job_id="a",subtask_index="1",quantile="0.99",} NaN
flink_taskmanager_job_task_operator_fraudpipe_scoring_latency_ms_count{job_id="a",subtask_index="0",} 9.0
flink_jobmanager_numRunningJobs{host="localhost",} 1.0
"""

INGEST = """\
fraudpipe_ingest_records_total{outcome="acked",topic="fraud.p.transactions"} 42.0
fraudpipe_ingest_records_total{outcome="acked",topic="fraud.p.labels"} 5.0
fraudpipe_ingest_records_total{outcome="invalid",topic="fraud.p.transactions"} 2.0
"""


def test_job_counters_are_summed_over_subtasks_and_latency_is_the_worst_subtask():
    out = figures.parse_job(JOB)
    assert out["scored"] == 200.0 and out["alerts"] == 3.0 and out["dead_letters"] == 1.0
    assert out["latency_p50"] == 14.0 and out["latency_p99"] == 31.0
    assert out["running_jobs"] == 1.0


def test_ingest_counts_the_transactions_it_wrote():
    assert figures.parse_ingest(INGEST, "fraud.p.transactions") == {"received": 42.0, "ingest_refused": 2.0}


def test_rates_span_seconds_and_survive_a_counter_reset():
    r = figures.Rates(span_s=5.0)
    assert r.rate("scored", 100.0, 0.0) is None
    assert math.isclose(r.rate("scored", 101.0, 100.0), 100.0)
    assert math.isclose(r.rate("scored", 102.0, 300.0), 150.0)
    # the job restarted: its counter starts again at 0; the rate counts from the last sample
    assert math.isclose(r.rate("scored", 103.0, 50.0), 50.0)
    for t in range(104, 112):
        r.rate("scored", float(t), 50.0 + (t - 103) * 10)
    assert math.isclose(r.rate("scored", 112.0, 140.0), 10.0)  # over the last 5 s only


def test_the_series_keeps_the_chart_window():
    r = figures.Rates(window_s=10.0)
    for t in range(30):
        r.add(float(t), {"tx_per_s": 1.0, "alerts_per_s": None})
    assert r.series[0][0] == 19.0 and r.series[-1] == [29.0, 1.0, None]


def test_java_versions():
    assert preflight.java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert preflight.java_major('java version "1.8.0_402"') == 8
    assert preflight.java_major('openjdk version "21" 2023-09-19') == 21
    assert preflight.java_major("no java here") is None
