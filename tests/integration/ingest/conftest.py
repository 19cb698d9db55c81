"""The ingest service (`fraudpipe ingest run`, its own process) against the session's real Kafka broker.

One service for the module's tests, writing to a pipeline whose topics are created here, as the
operator would create them; each conformance test makes its own topic.
"""

from __future__ import annotations

import uuid

import pytest
from ingest_support import IngestProcess, create_topic, pipeline_yaml


@pytest.fixture(scope="session")
def pipeline(kafka, tmp_path_factory) -> dict:
    """A FraudPipeline file whose transactions and labels topics exist (3 partitions each)."""
    name = f"it{uuid.uuid4().hex[:6]}"
    path = tmp_path_factory.mktemp("ingest-pipeline") / "pipeline.yaml"
    path.write_text(pipeline_yaml(name, "fraud"))
    topics = {"transactions": f"fraud.{name}.transactions", "labels": f"fraud.{name}.labels"}
    for topic in topics.values():
        create_topic(kafka["bootstrap"], 3, topic)
    return {"file": path, "topics": topics, "bootstrap": kafka["bootstrap"]}


@pytest.fixture(scope="session")
def ingest(pipeline, tmp_path_factory) -> dict:
    """{"url", "bootstrap", "topics", "file", "process"}: the service, ready."""
    proc = IngestProcess(pipeline["file"], pipeline["bootstrap"], tmp_path_factory.mktemp("ingest") / "ingest.log")
    proc.start()
    yield {"url": proc.url, "process": proc, **pipeline}
    proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used the service shows the end of its log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "ingest" in getattr(item, "fixturenames", ()):
        try:
            proc = item._request.getfixturevalue("ingest")["process"]
            report.sections.append(("fraudpipe ingest log", proc.log_tail()))
        except Exception as exc:  # noqa: BLE001 - a report hook must not fail the run
            report.sections.append(("fraudpipe ingest log", f"(not available: {exc})"))
