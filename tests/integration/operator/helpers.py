"""Test helpers: pipelines from the examples, and the children's operators played by the test."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import yaml

from fp_devtools.bench.operator_harness import Cluster, wait_for
from fp_operator.kinds import CHILDREN
from fraudpipeline.spec import API_VERSION, KIND

REPO = Path(__file__).resolve().parents[3]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pipeline_doc(namespace: str, name: str = "payments", example: str = "minimal", **spec) -> dict:
    """examples/<example>.yaml moved to `namespace`; `spec` sets dotted fields (a__b=v)."""
    doc = yaml.safe_load((REPO / "examples" / f"{example}.yaml").read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    for dotted, value in spec.items():
        node = doc["spec"]
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


def create(cluster: Cluster, doc: dict) -> dict:
    return cluster.check(cluster.create(doc))


def edit_spec(cluster: Cluster, namespace: str, name: str, patch: dict) -> dict:
    return cluster.merge_patch(API_VERSION, KIND, namespace, name, {"spec": patch})


def condition(fp: dict | None, ctype: str) -> dict:
    return next((c for c in ((fp or {}).get("status") or {}).get("conditions") or [] if c["type"] == ctype), {})


def wait_status(cluster: Cluster, namespace: str, name: str, check, what: str, timeout: float = 30) -> dict:
    """Wait until the pipeline's status satisfies `check` for the current generation."""

    def ok():
        fp = cluster.pipeline(namespace, name)
        st = (fp or {}).get("status") or {}
        return fp if st.get("observedGeneration") == fp["metadata"]["generation"] and check(fp) else None

    try:
        return wait_for(ok, timeout, what)
    except TimeoutError as exc:
        fp = cluster.pipeline(namespace, name)
        raise AssertionError(f"{exc}; status now: {yaml.safe_dump((fp or {}).get('status'))}") from None


def children(cluster: Cluster, namespace: str, name: str, kafka_namespace: str | None = None) -> dict:
    """Every object labelled as a child of the pipeline, by (kind, namespace, name)."""
    sel = f"frauddetect.dev/pipeline={name},frauddetect.dev/pipeline-namespace={namespace}"
    out = {}
    for k in CHILDREN:
        for ns in {namespace, kafka_namespace or namespace}:
            for obj in cluster.list(k.api_version(), k.kind, ns, sel):
                out[(k.kind, ns, obj["metadata"]["name"])] = obj
    return out


# ------------------------------------------------------- the children's operators, played by the test


def topics_ready(cluster: Cluster, kafka_namespace: str, namespace: str, name: str) -> int:
    """What Strimzi's Topic Operator writes once a topic exists in Kafka."""
    sel = f"frauddetect.dev/pipeline={name},frauddetect.dev/pipeline-namespace={namespace}"
    topics = cluster.list("kafka.strimzi.io/v1", "KafkaTopic", kafka_namespace, sel)
    for t in topics:
        cluster.merge_patch(
            "kafka.strimzi.io/v1",
            "KafkaTopic",
            kafka_namespace,
            t["metadata"]["name"],
            {
                "status": {
                    "observedGeneration": t["metadata"]["generation"],
                    "topicName": t["spec"]["topicName"],
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()}],
                }
            },
            subresource="status",
            manager="strimzi-topic-operator",
        )
    return len(topics)


def flink_running(
    cluster: Cluster, namespace: str, name: str, state: str = "RUNNING", lifecycle: str = "STABLE"
) -> None:
    """What the Flink Kubernetes Operator writes for a healthy application cluster."""
    fd = cluster.get("flink.apache.org/v1beta1", "FlinkDeployment", namespace, f"{name}-stream")
    cluster.merge_patch(
        "flink.apache.org/v1beta1",
        "FlinkDeployment",
        namespace,
        f"{name}-stream",
        {
            "status": {
                "lifecycleState": lifecycle,
                "jobManagerDeploymentStatus": "READY",
                "observedGeneration": fd["metadata"]["generation"],
                "jobStatus": {"state": state, "jobId": "a" * 32, "jobName": "fraud-scoring"},
            }
        },
        subresource="status",
        manager="flink-kubernetes-operator",
    )


def model_pods_ready(cluster: Cluster, namespace: str, name: str, timeout: float = 30) -> int:
    """What a kubelet reports for the model server's pods (there is no kubelet here)."""
    sel = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=model"
    pods = wait_for(lambda: cluster.list("v1", "Pod", namespace, sel), timeout, f"pods of {name}-model")
    t = now()
    for pod in pods:
        cluster.merge_patch(
            "v1",
            "Pod",
            namespace,
            pod["metadata"]["name"],
            {
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {"type": c, "status": "True", "lastTransitionTime": t}
                        for c in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
                    ],
                    "containerStatuses": [
                        {
                            "name": "model",
                            "ready": True,
                            "started": True,
                            "restartCount": 0,
                            "image": pod["spec"]["containers"][0]["image"],
                            "imageID": "",
                            "state": {"running": {"startedAt": t}},
                        }
                    ],
                }
            },
            subresource="status",
            manager="kubelet",
        )
    return len(pods)


def deep_copy(x):
    return copy.deepcopy(x)
