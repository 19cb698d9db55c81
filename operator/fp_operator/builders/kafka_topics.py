"""Strimzi KafkaTopics, in the Kafka cluster's namespace.

No owner references, even in the same namespace: a foreground cascade would delete a topic (and
its data) before the finalizer could release it, so topics are always cleaned up by the finalizer
according to deletionPolicy.
"""

from __future__ import annotations

from fp_operator import labels, names
from fraudpipeline.spec import FraudPipeline


def build_kafka_topics(p: FraudPipeline, topic_api_version: str) -> list[dict]:
    """`topic_api_version`: the served kafka.strimzi.io version, e.g. kafka.strimzi.io/v1."""
    out = []
    for role, topic in p.spec.kafka.topics.all().items():
        spec: dict = {"topicName": p.topic_name(role), "partitions": topic.partitions}
        if topic.replicas is not None:
            spec["replicas"] = topic.replicas
        if topic.config:
            spec["config"] = dict(sorted(topic.config.items()))
        out.append(
            {
                "apiVersion": topic_api_version,
                "kind": "KafkaTopic",
                "metadata": labels.metadata(
                    p,
                    names.topic_object(p, role),
                    "topic",
                    namespace=p.kafka_namespace,
                    owned=False,
                    extra_labels={labels.STRIMZI_CLUSTER: p.spec.kafka.cluster, labels.TOPIC_ROLE: role},
                ),
                "spec": spec,
            }
        )
    return out
