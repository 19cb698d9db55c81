"""Names of the children of a FraudPipeline: computed here and nowhere else."""

from __future__ import annotations

from fraudpipeline.spec import SERVING_PORT, FraudPipeline, topic_slug

# Defaults of the stream image (docs/image-contracts.md).
FLINK_PYTHON_JAR = {"v2_2": "local:///opt/flink/opt/flink-python-2.2.1.jar"}
FLINK_DATA_MOUNT = "/flink-data"
FLINK_METRICS_PORT = 9249
FLINK_REST_PORT = 8081


def model(p: FraudPipeline) -> str:
    """Deployment, Service, HPA, PDB and ServiceMonitor of the model service."""
    return f"{p.name}-model"


def stream(p: FraudPipeline) -> str:
    """FlinkDeployment and PodMonitor of the streaming job."""
    return f"{p.name}-stream"


def flink_service_account(p: FraudPipeline) -> str:
    """ServiceAccount (and its RoleBinding) of the Flink pods, when the spec names none."""
    return p.spec.stream.service_account or f"{p.name}-flink"


def bridge(p: FraudPipeline) -> str:
    """KafkaBridge; Strimzi derives `<name>-bridge` (Deployment) and `<name>-bridge-service` from it."""
    return p.name


def rules(p: FraudPipeline) -> str:
    return p.name


def dashboard(p: FraudPipeline) -> str:
    return f"{p.name}-dashboard"


def topic_object(p: FraudPipeline, role: str) -> str:
    """KafkaTopic object name. Namespace and pipeline names hold no dots, so the dotted form cannot
    collide between pipelines of different namespaces sharing one Kafka namespace."""
    return f"{p.namespace}.{p.name}.{topic_slug(role)}"


def serving_url(p: FraudPipeline) -> str:
    return f"http://{model(p)}.{p.namespace}.svc:{SERVING_PORT}"


def bridge_url(p: FraudPipeline) -> str:
    return f"http://{bridge(p)}-bridge-service.{p.namespace}.svc:{p.spec.kafka.bridge.port}"


def flink_ui_url(p: FraudPipeline) -> str:
    # The Flink operator's REST service is `<deployment>-rest`.
    return f"http://{stream(p)}-rest.{p.namespace}.svc:{FLINK_REST_PORT}"


def jar_uri(p: FraudPipeline) -> str:
    s = p.spec.stream
    return s.jar_uri or FLINK_PYTHON_JAR[s.flink_version]
