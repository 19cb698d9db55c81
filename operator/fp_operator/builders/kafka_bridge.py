"""Strimzi KafkaBridge (HTTP ingestion), in the pipeline's namespace, owned by the pipeline."""

from __future__ import annotations

from fp_operator import labels, names
from fraudpipeline.spec import FraudPipeline


def build_kafka_bridge(p: FraudPipeline, bridge_api_version: str) -> dict:
    """`bridge_api_version`: the served kafka.strimzi.io version, e.g. kafka.strimzi.io/v1."""
    bridge = p.spec.kafka.bridge
    return {
        "apiVersion": bridge_api_version,
        "kind": "KafkaBridge",
        "metadata": labels.metadata(p, names.bridge(p), "bridge"),
        "spec": {
            "replicas": 0 if p.spec.suspend else bridge.replicas,
            "bootstrapServers": p.bootstrap_servers,
            "http": {"port": bridge.port},
        },
    }
