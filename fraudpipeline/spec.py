"""The FraudPipeline API (`frauddetect.dev/v1alpha1`): one typed model, three users.

The operator parses every FraudPipeline it watches into `FraudPipeline`; the CRD in `crds/` is
generated from these classes (`fraudpipe operator crd`), so field names, defaults, ranges and the
CEL rules the API server enforces all come from here; the local mode loads the same YAML through
`load_pipeline()` and gets the same defaults and the same error messages.

Validation rules are written once as `Cel(...)` objects: the CEL expression goes into the CRD as
`x-kubernetes-validations` and the Python predicate beside it makes pydantic refuse the same specs
with the same message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError, core_schema

from fraudpipeline.model import MODEL_TAG_MAX_LENGTH, MODEL_TAG_PATTERN

GROUP = "frauddetect.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FraudPipeline"
PLURAL = "fraudpipelines"
SINGULAR = "fraudpipeline"
SHORT_NAMES = ["fp"]

# Longest pipeline name: children append suffixes (`-stream-rest` is made by the Flink operator)
# and Service names must stay DNS labels of at most 63 characters.
MAX_NAME_LENGTH = 40
SERVING_PORT = 3000
TOPIC_ROLES = ("transactions", "labels", "alerts", "deadLetter", "scores")
KAFKA_TOPIC_NAME = r"^[a-zA-Z0-9._-]+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
FLINK_MEMORY = r"^[0-9]+(\.[0-9]+)?([kKmMgGtT]([bB])?)?$"
DURATION = r"^[0-9]+ ?(ms|s|min|m|h|d)$"
# The model contract's tag rule (fraudpipeline.model): the API server refuses what serving would.
MODEL_TAG = MODEL_TAG_PATTERN


@dataclass(frozen=True)
class Cel:
    """One validation rule, enforced by the API server (CEL) and by pydantic (`check`).

    On a field, `self` is the field's value; on a model (listed in `__rules__`), `self` is the
    object. `field_path` (relative, e.g. ".minReplicas") tells the API server which field to blame.
    """

    rule: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None

    def crd(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out

    # pydantic hooks: used when the rule annotates a field (Annotated[int, Cel(...)])
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> Any:
            if value is not None and not self.check(value):
                raise PydanticCustomError("cel_rule", self.message)
            return value

        return core_schema.no_info_after_validator_function(validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        out = handler(schema)
        out.setdefault("x-kubernetes-validations", []).append(self.crd())
        return out


def _add_model_rules(schema: dict[str, Any], cls: type) -> None:
    rules: tuple[Cel, ...] = getattr(cls, "__rules__", ())
    if rules:
        schema["x-kubernetes-validations"] = [r.crd() for r in rules]


class _Model(BaseModel):
    """camelCase in YAML, snake_case in Python, unknown fields refused, immutable once parsed."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        protected_namespaces=(),
        json_schema_extra=_add_model_rules,
    )
    __rules__: ClassVar[tuple[Cel, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self):
        for rule in self.__rules__:
            if not rule.check(self):
                raise PydanticCustomError("cel_rule", rule.message)
        return self


# ---------------------------------------------------------------------------------------- kafka


def _kafka_topic_name_ok(name: str) -> bool:
    return bool(re.match(KAFKA_TOPIC_NAME, name)) and len(name) <= 249 and name not in (".", "..")


TopicName = Annotated[
    str,
    Field(max_length=249),
    Cel(
        rule="self.matches('^[a-zA-Z0-9._-]+$') && self != '.' && self != '..'",
        message="Kafka topic names may only contain ASCII letters, digits, '.', '_' and '-' "
        "(at most 249 characters, and not '.' or '..')",
        check=_kafka_topic_name_ok,
    ),
]
Partitions = Annotated[int, Cel(rule="self > 0", message="partitions must be greater than 0", check=lambda v: v > 0)]
ConfigValue = StrictInt | StrictStr


class TopicSpec(_Model):
    """One Kafka topic, created as a Strimzi KafkaTopic in the Kafka namespace."""

    name: TopicName | None = Field(
        None,
        description=("Kafka topic name. Default: `<namespace>.<pipeline>.<role>`, e.g. `fraud.payments.transactions`."),
    )
    partitions: Partitions = Field(
        3,
        description=(
            "Number of partitions. Can only grow: Kafka cannot remove partitions, so a lower value is "
            "refused (condition TopicsReady=False, reason PartitionDecreaseRefused)."
        ),
    )
    replicas: int | None = Field(
        None, ge=1, le=32767, description=("Replication factor. Default: the broker's default.replication.factor.")
    )
    config: dict[str, ConfigValue] = Field(
        default_factory=dict,
        description=("Kafka topic configuration, e.g. retention.ms: 604800000, min.insync.replicas: 2."),
    )


def _explicit_names(topics: TopicsSpec) -> list[str]:
    return [t.name for t in topics.all().values() if t.name]


def _distinct_names_rule() -> str:
    """CEL: no two roles name the same topic (pairwise; the API server's CEL has no variables)."""

    def named(role: str) -> str:
        return "has(self.scores) && has(self.scores.name)" if role == "scores" else f"has(self.{role}.name)"

    pairs = []
    for i, a in enumerate(TOPIC_ROLES):
        for b in TOPIC_ROLES[i + 1 :]:
            pairs.append(f"!({named(a)} && {named(b)} && self.{a}.name == self.{b}.name)")
    return " && ".join(pairs)


class TopicsSpec(_Model):
    """The pipeline's topics. Transactions come in, labels (confirmed fraud) feed the terminal-risk
    features, alerts carry decisions above the threshold, the dead-letter topic takes records that
    could not be parsed or scored, and the optional scores topic carries every scored transaction."""

    __rules__ = (
        Cel(
            rule=_distinct_names_rule(),
            message="each topic needs its own name: two roles use the same Kafka topic name",
            check=lambda t: len(_explicit_names(t)) == len(set(_explicit_names(t))),
        ),
    )

    transactions: TopicSpec = Field(default_factory=TopicSpec, description="Incoming card transactions.")
    labels: TopicSpec = Field(default_factory=TopicSpec, description="Fraud labels (confirmed fraud reports).")
    alerts: TopicSpec = Field(default_factory=TopicSpec, description="Transactions scored above the threshold.")
    dead_letter: TopicSpec = Field(default_factory=TopicSpec, description="Records that could not be processed.")
    scores: TopicSpec | None = Field(None, description="Optional: every scored transaction. Absent: not created.")

    def all(self) -> dict[str, TopicSpec]:
        """The topics to create, by role (camelCase role names, as in the YAML)."""
        out = {
            "transactions": self.transactions,
            "labels": self.labels,
            "alerts": self.alerts,
            "deadLetter": self.dead_letter,
        }
        if self.scores is not None:
            out["scores"] = self.scores
        return out


class BridgeSpec(_Model):
    """A Strimzi KafkaBridge (HTTP -> Kafka) in the pipeline's namespace, for HTTP ingestion."""

    enabled: bool = Field(False, description="Create a KafkaBridge named after the pipeline.")
    replicas: int = Field(1, ge=0, description="Bridge replicas.")
    port: int = Field(8080, ge=1024, le=65535, description="HTTP port of the bridge.")


class KafkaSpec(_Model):
    """Where the pipeline's topics live: an existing Strimzi-managed Kafka cluster."""

    cluster: str = Field(
        ...,
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description=("Name of the Strimzi Kafka cluster; becomes the strimzi.io/cluster label of every KafkaTopic."),
    )
    namespace: str | None = Field(
        None,
        max_length=63,
        pattern=DNS_LABEL,
        description=("Namespace of the Kafka cluster (where KafkaTopics are created). Default: the pipeline's."),
    )
    bootstrap_servers: str | None = Field(
        None,
        pattern=r"^[^,\s]+:[0-9]+(,[^,\s]+:[0-9]+)*$",
        description=("host:port[,host:port]. Default: `<cluster>-kafka-bootstrap.<namespace>.svc:9092`."),
    )
    topics: TopicsSpec = Field(default_factory=TopicsSpec, description="The pipeline's topics.")
    deletion_policy: Literal["Retain", "Delete"] = Field(
        "Retain",
        description=(
            "What happens to the topics when the pipeline is deleted. Retain (default): the topics are "
            'released (strimzi.io/managed: "false") before their KafkaTopic objects are deleted, so the '
            "data stays in Kafka. Delete: the KafkaTopics are deleted and Strimzi deletes the topics."
        ),
    )
    bridge: BridgeSpec = Field(default_factory=BridgeSpec, description="Optional HTTP ingestion bridge.")


# ---------------------------------------------------------------------------------------- model

Quantity = Annotated[StrictStr, Field(pattern=QUANTITY)] | StrictInt


class ResourceList(_Model):
    cpu: Quantity | None = Field(None, description="CPU, e.g. 500m or 1.")
    memory: Quantity | None = Field(None, description="Memory, e.g. 512Mi or 1Gi.")


class ResourcesSpec(_Model):
    """Kubernetes resource requests and limits of each model-server container."""

    requests: ResourceList = Field(
        default_factory=lambda: ResourceList(cpu="500m", memory="512Mi"),
        description="Requests. The HPA's CPU target is relative to requests.cpu.",
    )
    limits: ResourceList = Field(default_factory=lambda: ResourceList(memory="1Gi"), description="Limits.")


class AutoscalingSpec(_Model):
    """The model service's HorizontalPodAutoscaler (autoscaling/v2, CPU utilization)."""

    __rules__ = (
        Cel(
            rule="self.minReplicas <= self.maxReplicas",
            message="minReplicas must be less than or equal to maxReplicas: raise maxReplicas or lower minReplicas",
            check=lambda a: a.min_replicas <= a.max_replicas,
            field_path=".minReplicas",
        ),
    )

    min_replicas: int = Field(1, ge=1, le=1000, description="Fewest model-server replicas.")
    max_replicas: int = Field(3, ge=1, le=1000, description="Most model-server replicas.")
    target_cpu_utilization_percentage: int = Field(
        70,
        ge=1,
        le=500,
        alias="targetCPUUtilizationPercentage",
        description=("Average CPU utilization (percent of requests.cpu) the HPA aims for."),
    )


Threshold = Annotated[
    float,
    Cel(
        rule="self >= 0.0 && self <= 1.0",
        message="threshold must be between 0 and 1 (a fraud probability)",
        check=lambda v: 0.0 <= v <= 1.0,
    ),
]

ModelTag = Annotated[
    str,
    Field(pattern=MODEL_TAG, max_length=MODEL_TAG_MAX_LENGTH),
    Cel(
        rule="!self.endsWith(':latest')",
        message="modelTag must pin a version (fraud-xgb:<version>), not 'latest'",
        check=lambda v: not v.endswith(":latest"),
    ),
]


class ModelSpec(_Model):
    """The model service: a BentoML server (the serving image) scoring with an XGBoost model."""

    image: str = Field(
        ..., min_length=1, description=("Serving image; it bakes the BentoML model store holding `modelTag`.")
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description=("Image pull policy of the model-server containers.")
    )
    model_tag: ModelTag = Field(
        ...,
        description=(
            "BentoML model tag name:version as `fraudpipe train` prints it, e.g. fraud-xgb:q3x7kzd2: each part 1-63 "
            "lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit. "
            "Passed as FRAUDPIPE_MODEL_TAG."
        ),
    )
    threshold: Threshold | None = Field(
        None, description=("Decision threshold (fraud probability). Default: the threshold saved with the model.")
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes per model server (FRAUDPIPE_WORKERS).")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Container resources.")
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, description="Horizontal autoscaling.")


# --------------------------------------------------------------------------------------- stream


class FlinkResource(_Model):
    """The Flink operator's `resource` form (released CRD 1.15): cpu as a number, memory as Flink size."""

    cpu: float = Field(..., gt=0, description="CPU cores, e.g. 0.5.")
    memory: str = Field(..., pattern=FLINK_MEMORY, description="Flink memory size, e.g. 1024m or 2g.")


class JobManagerSpec(_Model):
    resource: FlinkResource = Field(
        default_factory=lambda: FlinkResource(cpu=0.5, memory="1024m"), description="JobManager pod resources."
    )


class TaskManagerSpec(_Model):
    resource: FlinkResource = Field(
        default_factory=lambda: FlinkResource(cpu=1.0, memory="2048m"), description="TaskManager pod resources."
    )
    slots: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Task slots per TaskManager (taskmanager.numberOfTaskSlots). Default 1: the job's Python steps "
            "run in their TaskManager's one interpreter, so a second slot in the same TaskManager shares its "
            "lock instead of adding a core (measured in docs/streaming.md); scale out with parallelism."
        ),
    )


class ScoringSpec(_Model):
    """How the Flink job scores each transaction."""

    mode: Literal["embedded", "remote"] = Field(
        "embedded",
        description=(
            "embedded: the job loads the XGBoost model (model.ubj + model.json) and scores in-process. "
            "remote: the job calls the model service's POST /score_batch."
        ),
    )
    model_path: str = Field(
        "/opt/flink/usrlib/model",
        min_length=1,
        description=("embedded mode: folder in the stream image holding model.ubj and model.json."),
    )
    timeout_ms: int = Field(1000, ge=1, le=60000, description="remote mode: per-request timeout.")


class StateSpec(_Model):
    """Where checkpoints and savepoints go. The defaults live on a volume mounted at /flink-data:
    an emptyDir unless `volumeClaim` names a (ReadWriteMany) PersistentVolumeClaim. Use durable
    storage (s3://, a RWX claim) for savepoint and last-state upgrades to survive pod loss."""

    checkpoint_dir: str = Field("file:///flink-data/checkpoints", min_length=1, description="Checkpoint directory URI.")
    savepoint_dir: str = Field("file:///flink-data/savepoints", min_length=1, description="Savepoint directory URI.")
    ha_dir: str = Field(
        "file:///flink-data/ha",
        min_length=1,
        description=("high-availability.storageDir (Kubernetes HA, set unless upgradeMode is stateless)."),
    )
    volume_claim: str | None = Field(
        None,
        pattern=DNS_LABEL,
        description=("PersistentVolumeClaim mounted at /flink-data in every Flink pod. Default: an emptyDir."),
    )


class FlinkAutoscalerSpec(_Model):
    """The Flink Kubernetes Operator's own autoscaler (per-vertex parallelism from busy time and lag)."""

    enabled: bool = Field(False, description="Set job.autoscaler.enabled.")
    utilization_target: float = Field(0.7, gt=0, le=1, description="job.autoscaler.utilization.target.")


class StreamSpec(_Model):
    """The PyFlink job (a FlinkDeployment in application mode run by the Flink Kubernetes Operator)."""

    __rules__ = (
        Cel(
            rule="self.parallelism <= self.maxParallelism",
            message="parallelism must be less than or equal to maxParallelism",
            check=lambda s: s.parallelism <= s.max_parallelism,
            field_path=".parallelism",
        ),
        Cel(
            rule="self.flinkVersion == 'v2_2' || has(self.jarURI)",
            message="jarURI is required unless flinkVersion is v2_2: give the flink-python jar of your image's "
            "exact Flink version, e.g. local:///opt/flink/opt/flink-python-1.20.3.jar",
            check=lambda s: s.flink_version == "v2_2" or s.jar_uri is not None,
            field_path=".jarURI",
        ),
    )

    image: str = Field(..., min_length=1, description="Stream image: Flink + PyFlink + the fp_flink job.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description=("Image pull policy of the Flink pods.")
    )
    flink_version: Literal["v1_20", "v2_0", "v2_1", "v2_2"] = Field(
        "v2_2", description=("FlinkDeployment.spec.flinkVersion; must match the image.")
    )
    jar_uri: str | None = Field(
        None,
        alias="jarURI",
        min_length=1,
        description=(
            "The flink-python jar (PythonDriver). Default for v2_2: local:///opt/flink/opt/flink-python-2.2.1.jar."
        ),
    )
    parallelism: int = Field(2, ge=1, le=10000, description="Job parallelism.")
    max_parallelism: Annotated[
        int,
        # A transition rule: the API server checks it on updates only (pydantic sees one object, no
        # old one; the job refuses a restore into another count, see fp_flink.functions).
        Cel(
            rule="self == oldSelf",
            message="maxParallelism cannot change: every checkpoint and savepoint splits the job's keyed "
            "state into maxParallelism groups and cannot be restored into another count; to change it, "
            "start the job without state (delete the FraudPipeline and create it again)",
            check=lambda v: True,
        ),
    ] = Field(
        120,
        ge=1,
        le=32768,
        description=(
            "pipeline.max-parallelism: the upper bound for rescaling (keyed state is split into this many groups). "
            "Fixed once created."
        ),
    )
    upgrade_mode: Literal["savepoint", "last-state", "stateless"] = Field(
        "savepoint", description=("How the Flink operator carries state across upgrades.")
    )
    checkpoint_interval: str = Field("30s", pattern=DURATION, description="execution.checkpointing.interval.")
    state: StateSpec = Field(default_factory=StateSpec, description="Checkpoint and savepoint storage.")
    scoring: ScoringSpec = Field(default_factory=ScoringSpec, description="How transactions are scored.")
    consumer_group: str | None = Field(
        None,
        min_length=1,
        max_length=249,
        description=("Kafka consumer group id. Default: `fraudpipe.<namespace>.<pipeline>`."),
    )
    job_manager: JobManagerSpec = Field(default_factory=JobManagerSpec, description="JobManager.")
    task_manager: TaskManagerSpec = Field(default_factory=TaskManagerSpec, description="TaskManagers.")
    autoscaler: FlinkAutoscalerSpec = Field(default_factory=FlinkAutoscalerSpec, description="Flink autoscaler.")
    service_account: str | None = Field(
        None,
        pattern=DNS_LABEL,
        description=(
            "ServiceAccount of the Flink pods. Default: the operator creates `<pipeline>-flink` with a "
            "RoleBinding to the chart's Flink job ClusterRole."
        ),
    )
    flink_configuration: dict[str, str] = Field(
        default_factory=dict,
        description=("Extra Flink configuration, applied last (wins over what the operator sets)."),
    )


# ----------------------------------------------------------------------------------- monitoring


class MonitoringSpec(_Model):
    """Prometheus Operator objects and a Grafana dashboard, created when their CRDs are served."""

    enabled: bool = Field(False, description="Create ServiceMonitor, PodMonitor, PrometheusRule and dashboard.")
    release: str = Field(
        "kube-prometheus-stack",
        max_length=63,
        description=("The kube-prometheus-stack release name, set as the `release` label its selectors match."),
    )
    dashboards: bool = Field(True, description='Create a Grafana dashboard ConfigMap (grafana_dashboard: "1").')
    alerts: bool = Field(True, description="Create the PrometheusRule with the pipeline's alerts.")


# ------------------------------------------------------------------------------------- pipeline


class FraudPipelineSpec(_Model):
    """Desired state of a fraud-detection pipeline: topics, a stream job and a model service."""

    kafka: KafkaSpec = Field(..., description="Kafka cluster and topics.")
    model: ModelSpec = Field(..., description="Model service.")
    stream: StreamSpec = Field(..., description="Streaming job.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Monitoring.")
    suspend: bool = Field(
        False,
        description=(
            "Suspend the pipeline: the Flink job is suspended (with a savepoint in savepoint mode) and "
            "the model service is scaled to zero. Topics stay."
        ),
    )


NAME_RULE = Cel(
    rule=f"self.size() <= {MAX_NAME_LENGTH} && self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    message=f"metadata.name must be a DNS label (lowercase letters, digits and '-', starting with a letter) of at "
    f"most {MAX_NAME_LENGTH} characters: child objects append suffixes such as -stream-rest",
    check=lambda name: len(name) <= MAX_NAME_LENGTH and bool(re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", name)),
)


class ObjectMeta(BaseModel):
    """The part of metadata the pipeline needs; the rest of the API server's metadata is kept as is."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: Annotated[str, NAME_RULE]
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None


class FraudPipeline(BaseModel):
    """A whole FraudPipeline document (apiVersion, kind, metadata, spec); status is not parsed."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    api_version: Literal["frauddetect.dev/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["FraudPipeline"] = KIND
    metadata: ObjectMeta
    spec: FraudPipelineSpec

    # Derived names: the only place they are computed (operator, docs and local mode agree).
    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def kafka_namespace(self) -> str:
        return self.spec.kafka.namespace or self.namespace

    @property
    def bootstrap_servers(self) -> str:
        k = self.spec.kafka
        return k.bootstrap_servers or f"{k.cluster}-kafka-bootstrap.{self.kafka_namespace}.svc:9092"

    def topic_name(self, role: str) -> str:
        """Kafka topic name of a role ("transactions", "labels", "alerts", "deadLetter", "scores")."""
        topic = self.spec.kafka.topics.all().get(role)
        if topic is not None and topic.name:
            return topic.name
        return f"{self.namespace}.{self.name}.{topic_slug(role)}"

    @property
    def consumer_group(self) -> str:
        return self.spec.stream.consumer_group or f"fraudpipe.{self.namespace}.{self.name}"


def topic_slug(role: str) -> str:
    """ "deadLetter" -> "dead-letter": the role as it appears in default topic and object names."""
    return re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), role)


# --------------------------------------------------------------------------------------- status

ConditionType = Literal["TopicsReady", "StreamReady", "ModelReady", "MonitoringReady", "Ready"]
Phase = Literal["Progressing", "Ready", "Suspended", "Degraded", "Invalid"]


class Condition(_Model):
    type: ConditionType = Field(..., description="Condition type.")
    status: Literal["True", "False", "Unknown"] = Field(..., description="True, False or Unknown.")
    reason: str = Field(..., description="CamelCase reason from a closed set (see docs/operator.md).")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str | None = Field(None, description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(None, description="metadata.generation this condition is about.")


class TopicStatus(_Model):
    role: str = Field(..., description="transactions, labels, alerts, deadLetter or scores.")
    name: str = Field(..., description="KafkaTopic object name (in the Kafka namespace).")
    topic_name: str = Field(..., description="Kafka topic name.")
    ready: bool = Field(False, description="Strimzi reports Ready for the current generation.")
    partitions: int | None = Field(None, description="Partitions of the applied KafkaTopic.")
    message: str | None = Field(None, description="Why it is not ready, when known.")


class StreamStatus(_Model):
    name: str = Field(..., description="FlinkDeployment name.")
    lifecycle_state: str | None = Field(None, description="FlinkDeployment status.lifecycleState.")
    job_state: str | None = Field(None, description="FlinkDeployment status.jobStatus.state.")
    parallelism: int | None = Field(None, description="Applied job parallelism.")
    error: str | None = Field(None, description="FlinkDeployment status.error, when set.")


class ModelStatus(_Model):
    name: str = Field(..., description="Deployment (and Service, HPA) name.")
    tag: str = Field(..., description="Applied BentoML model tag.")
    ready_replicas: int = Field(0, description="Ready model-server replicas.")
    desired_replicas: int = Field(0, description="Replicas the Deployment asks for.")


class Endpoints(_Model):
    bootstrap_servers: str | None = Field(None, description="Kafka bootstrap servers.")
    serving: str | None = Field(None, description="Model service URL (in-cluster).")
    bridge: str | None = Field(None, description="KafkaBridge HTTP URL, when enabled.")
    flink_ui: str | None = Field(None, alias="flinkUI", description="Flink REST/UI URL (in-cluster).")


class FraudPipelineStatus(_Model):
    """What the operator observed, written to the status subresource."""

    model_config = ConfigDict(extra="forbid")
    observed_generation: int | None = Field(None, description="metadata.generation last reconciled.")
    phase: Phase | None = Field(None, description="Progressing, Ready, Suspended, Degraded or Invalid.")
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="TopicsReady, StreamReady, ModelReady, MonitoringReady and Ready.",
    )
    topics: list[TopicStatus] = Field(default_factory=list, description="One entry per KafkaTopic.")
    stream: StreamStatus | None = Field(None, description="The Flink job.")
    model: ModelStatus | None = Field(None, description="The model service.")
    endpoints: Endpoints | None = Field(None, description="Where to reach the pipeline.")
    kafka_api_version: str | None = Field(None, description="kafka.strimzi.io version used (v1 or v1beta2).")


# ----------------------------------------------------------------------------------- local mode


class SpecError(ValueError):
    """A FraudPipeline that cannot be used; the message names each bad field and the fix."""


def parse_pipeline(doc: dict[str, Any], *, source: str = "FraudPipeline") -> FraudPipeline:
    """Validate a FraudPipeline document (as read from YAML or the API server)."""
    if not isinstance(doc, dict):
        raise SpecError(f"{source}: expected a mapping with apiVersion, kind, metadata and spec")
    try:
        return FraudPipeline.model_validate(doc)
    except ValidationError as exc:
        raise SpecError(f"{source} is invalid:\n" + format_errors(exc)) from None


def format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-after", "lax-or-strict")))
        lines.append(f"  {path or '(document)'}: {err['msg']}")
    return "\n".join(lines)


def load_pipeline(path: str | Path) -> FraudPipeline:
    """Read one FraudPipeline from a YAML file."""
    import yaml

    path = Path(path)
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    pipelines = [d for d in docs if isinstance(d, dict) and d.get("kind") == KIND]
    if len(pipelines) != 1:
        raise SpecError(f"{path}: expected exactly one document of kind {KIND}, found {len(pipelines)}")
    return parse_pipeline(pipelines[0], source=str(path))
