"""The API layer without a server: what it sends, and how it classifies refusals."""

from __future__ import annotations

import json

import pytest

from fp_operator.kube import ApiError, Kube


class Transport:
    def __init__(self, status: int = 200, body: dict | None = None):
        self.status, self.body, self.sent = status, body or {}, []

    def call(self, method, path, query, headers, body):
        self.sent.append(
            {
                "method": method,
                "path": path,
                "query": query,
                "headers": headers,
                "body": json.loads(body) if body else None,
            }
        )
        return self.status, json.dumps(self.body).encode()


@pytest.mark.parametrize(
    "status,retryable",
    [
        (0, True),
        (404, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (403, False),
        (422, False),
    ],
)
def test_errors_by_retryability(status, retryable):
    assert ApiError(status, "x").retryable is retryable


def test_a_refusal_carries_the_api_servers_message():
    kube = Kube(Transport(422, {"kind": "Status", "reason": "Invalid", "message": "denied by policy p"}), "me")
    with pytest.raises(ApiError) as exc:
        kube.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}})
    assert (exc.value.status, exc.value.reason, exc.value.message) == (422, "Invalid", "denied by policy p")
    assert not exc.value.retryable


def test_apply_is_a_forced_strict_server_side_apply_of_our_field_manager():
    t = Transport(200, {"kind": "Deployment"})
    Kube(t, "me").apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}})
    sent = t.sent[0]
    assert (sent["method"], sent["path"]) == ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d")
    assert sent["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert dict(sent["query"]) == {
        "fieldManager": "fraudpipeline-operator",
        "force": "true",
        "fieldValidation": "Strict",
    }


def test_events_are_events_k8s_io_v1_about_the_pipeline():
    t = Transport(201)
    fp = {
        "apiVersion": "frauddetect.dev/v1alpha1",
        "kind": "FraudPipeline",
        "metadata": {"name": "payments", "namespace": "fraud", "uid": "u"},
    }
    Kube(t, "pod-1").post_event(fp, reason="AllComponentsReady", note="é" * 1000, action="Reconcile")
    sent = t.sent[0]
    assert sent["path"] == "/apis/events.k8s.io/v1/namespaces/fraud/events"
    e = sent["body"]
    assert e["regarding"] == {
        "apiVersion": "frauddetect.dev/v1alpha1",
        "kind": "FraudPipeline",
        "name": "payments",
        "namespace": "fraud",
        "uid": "u",
    }
    assert (e["type"], e["reason"], e["action"]) == ("Normal", "AllComponentsReady", "Reconcile")
    assert e["reportingController"] == "frauddetect.dev/fraudpipeline-operator" and e["reportingInstance"] == "pod-1"
    assert len(e["note"].encode()) <= 1024 and e["eventTime"].endswith("Z")
