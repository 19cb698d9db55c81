"""Every kind the operator reads or writes, one row each: the one registry of child kinds.

The table drives the watches (handlers.py), cache priming (runtime.py), REST paths and discovery
(kube.py), the apiVersion the builders emit, the status readers (status.py), the chart's RBAC test
and the benchmark. Adding a child kind is one row here, a builder, and its RBAC rule.

Pure data: no I/O, so the builders may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fp_operator import readiness
from fraudpipeline import spec


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str  # "" for the core API
    versions: tuple[str, ...]  # the versions we can use, preferred first
    plural: str
    namespaced: bool = True
    # True: owner reference to the pipeline, removed by the garbage collector. False: the pipeline's
    # finalizer releases and deletes it (KafkaTopics, which may live in another namespace).
    owned: bool = True
    # A kind from a CRD the cluster may lack (Strimzi, Flink operator, Prometheus operator):
    # discovery says whether and at which of `versions` it is served.
    optional: bool = False
    # Reads the child's own status (its operator's verdict); None: nothing to read.
    ready: Callable[[dict | None], readiness.Readiness] | None = None

    def api_version(self, version: str | None = None) -> str:
        v = version or self.versions[0]
        return f"{self.group}/{v}" if self.group else v

    def path(
        self,
        version: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """REST path, e.g. /apis/apps/v1/namespaces/ns/deployments/name."""
        v = version or self.versions[0]
        base = f"/apis/{self.group}/{v}" if self.group else f"/api/{v}"
        out = base + (f"/namespaces/{namespace}" if namespace and self.namespaced else "") + f"/{self.plural}"
        return out + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")


STRIMZI = "kafka.strimzi.io"
FLINK = "flink.apache.org"
MONITORING = "monitoring.coreos.com"

# The children, in the order the builders emit them.
CHILDREN: tuple[Kind, ...] = (
    Kind(
        "KafkaTopic", STRIMZI, ("v1", "v1beta2"), "kafkatopics", owned=False, optional=True, ready=readiness.kafka_topic
    ),
    Kind("KafkaBridge", STRIMZI, ("v1", "v1beta2"), "kafkabridges", optional=True),
    Kind("ServiceAccount", "", ("v1",), "serviceaccounts"),
    Kind("RoleBinding", "rbac.authorization.k8s.io", ("v1",), "rolebindings"),
    Kind("FlinkDeployment", FLINK, ("v1beta1",), "flinkdeployments", optional=True, ready=readiness.flink_deployment),
    Kind("Deployment", "apps", ("v1",), "deployments", ready=readiness.deployment),
    Kind("Service", "", ("v1",), "services"),
    Kind("HorizontalPodAutoscaler", "autoscaling", ("v2",), "horizontalpodautoscalers"),
    Kind("PodDisruptionBudget", "policy", ("v1",), "poddisruptionbudgets"),
    Kind("ServiceMonitor", MONITORING, ("v1",), "servicemonitors", optional=True),
    Kind("PodMonitor", MONITORING, ("v1",), "podmonitors", optional=True),
    Kind("PrometheusRule", MONITORING, ("v1",), "prometheusrules", optional=True),
    Kind("ConfigMap", "", ("v1",), "configmaps"),
)

# What else the operator touches: its own resource, the events it posts, the leader-election lease.
PIPELINE = Kind(spec.KIND, spec.GROUP, (spec.VERSION,), spec.PLURAL)
EVENT = Kind("Event", "events.k8s.io", ("v1",), "events")
LEASE = Kind("Lease", "coordination.k8s.io", ("v1",), "leases")

KINDS: dict[str, Kind] = {k.kind: k for k in (PIPELINE, *CHILDREN, EVENT, LEASE)}
CHILD_KINDS: dict[str, Kind] = {k.kind: k for k in CHILDREN}
MONITORING_KINDS = frozenset(k.kind for k in CHILDREN if k.group == MONITORING)


def api_version(kind: str) -> str:
    """The preferred apiVersion of a kind (optional kinds: see Capabilities.api_version)."""
    return KINDS[kind].api_version()
