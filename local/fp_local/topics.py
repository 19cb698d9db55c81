"""The pipeline's topics in the local broker: what Strimzi's topic operator does on a cluster.

Missing topics are created with the spec's partitions and configs; an existing topic with fewer
partitions grows (Kafka cannot shrink one: fewer is reported and left as it is) and gets the
spec's configs.
"""

from __future__ import annotations

from fp_local.plan import TopicPlan


def ensure(bootstrap: str, wanted: list[TopicPlan]) -> list[str]:
    """Create or update the topics; returns one line per change or refusal."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        NewPartitions,
        NewTopic,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=15).topics
    said: list[str] = []
    create = [t for t in wanted if t.name not in existing]
    if create:
        futures = admin.create_topics(
            [NewTopic(t.name, t.partitions, 1, config=t.config) for t in create], operation_timeout=30
        )
        for fut in futures.values():
            try:
                fut.result(30)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        said += [f"created {t.name} ({t.partitions} partitions)" for t in create]
    grow = []
    for t in wanted:
        if t.name in existing:
            have = len(existing[t.name].partitions)
            if have < t.partitions:
                grow.append(NewPartitions(t.name, t.partitions))
                said.append(f"{t.name}: {have} -> {t.partitions} partitions")
            elif have > t.partitions:
                said.append(
                    f"{t.name} keeps its {have} partitions (spec.kafka.topics.{t.role}.partitions says "
                    f"{t.partitions}): Kafka cannot remove partitions"
                )
    if grow:
        for fut in admin.create_partitions(grow, operation_timeout=30).values():
            fut.result(30)
    configs = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            t.name,
            incremental_configs=[
                ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in t.config.items()
            ],
        )
        for t in wanted
        if t.name in existing and t.config
    ]
    if configs:
        for fut in admin.incremental_alter_configs(configs).values():
            fut.result(30)
    wait_for_leaders(admin, [t.name for t in wanted])
    return said


def wait_for_leaders(admin, names: list[str], timeout: float = 30.0) -> None:
    """Until every partition of `names` has a leader (a fresh topic has none for a moment)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=10).topics
        ready = all(
            n in topics and topics[n].error is None and all(p.leader >= 0 for p in topics[n].partitions.values())
            for n in names
        )
        if ready or time.monotonic() > deadline:
            return
        time.sleep(0.2)
