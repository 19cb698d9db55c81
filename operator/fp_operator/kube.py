"""The one place the operator talks to the API server (besides kopf's own watches).

Children are written with server-side apply under one field manager (`fraudpipeline-operator`,
force=true: we own what we set); the FraudPipeline's status with a merge patch on the status
subresource. Every request is counted (by verb and kind) for /metrics and the benchmark.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fraudpipeline import spec
from fp_operator.builders.context import MONITORING_KINDS, Capabilities
from fp_operator.labels import FIELD_MANAGER


@dataclass(frozen=True)
class Resource:
    group: str
    plural: str


# Every kind the operator reads or writes. Versions come from each object's apiVersion.
RESOURCES: dict[str, Resource] = {
    "FraudPipeline": Resource(spec.GROUP, spec.PLURAL),
    "KafkaTopic": Resource("kafka.strimzi.io", "kafkatopics"),
    "KafkaBridge": Resource("kafka.strimzi.io", "kafkabridges"),
    "FlinkDeployment": Resource("flink.apache.org", "flinkdeployments"),
    "Deployment": Resource("apps", "deployments"),
    "Service": Resource("", "services"),
    "ServiceAccount": Resource("", "serviceaccounts"),
    "ConfigMap": Resource("", "configmaps"),
    "Event": Resource("", "events"),
    "HorizontalPodAutoscaler": Resource("autoscaling", "horizontalpodautoscalers"),
    "PodDisruptionBudget": Resource("policy", "poddisruptionbudgets"),
    "RoleBinding": Resource("rbac.authorization.k8s.io", "rolebindings"),
    "ServiceMonitor": Resource("monitoring.coreos.com", "servicemonitors"),
    "PodMonitor": Resource("monitoring.coreos.com", "podmonitors"),
    "PrometheusRule": Resource("monitoring.coreos.com", "prometheusrules"),
}
_DISCOVERY_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


class ApiError(Exception):
    """A refused or failed API request, with the API server's own message."""

    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(f"{status} {reason}: {message}" if reason else f"{status}: {message}")
        self.status, self.message, self.reason = status, message, reason

    @property
    def namespace_terminating(self) -> bool:
        """The API server refuses new objects in a namespace being deleted: nothing to repair there."""
        return self.status == 403 and "being terminated" in self.message

    @property
    def retryable(self) -> bool:
        return self.status in (0, 409, 429) or self.status >= 500


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fraudpipeline")
    except PackageNotFoundError:
        return "dev"


def path_of(api_version: str, kind: str, namespace: str | None, name: str | None = None,
            subresource: str | None = None) -> str:
    res = RESOURCES[kind]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    out = base + (f"/namespaces/{namespace}" if namespace else "") + f"/{res.plural}"
    if name:
        out += f"/{name}"
    if subresource:
        out += f"/{subresource}"
    return out


class Kube:
    def __init__(self, api_client: Any, field_manager: str = FIELD_MANAGER):
        self.api = api_client
        self.api.user_agent = f"{field_manager}/{_version()}"
        self.field_manager = field_manager
        self.requests: Counter[tuple[str, str]] = Counter()  # (verb, kind) -> count
        self._lock = threading.Lock()
        self.identity = f"{socket.gethostname()}"

    @classmethod
    def from_config(cls, kubeconfig: str | None = None) -> "Kube":
        """From a kubeconfig (path, else $KUBECONFIG/~/.kube/config) or the in-cluster account."""
        import os

        from kubernetes import config

        path = kubeconfig or os.environ.get("KUBECONFIG")
        if path or os.path.exists(os.path.expanduser("~/.kube/config")):
            api = config.new_client_from_config(config_file=path)
        else:
            config.load_incluster_config()
            from kubernetes.client import ApiClient

            api = ApiClient()
        return cls(api)

    # ------------------------------------------------------------------------------------ plumbing

    def _count(self, verb: str, kind: str) -> None:
        from fp_operator import metrics

        with self._lock:
            self.requests[(verb, kind)] += 1
        metrics.API_REQUESTS.labels(verb=verb, kind=kind).inc()

    def request(self, method: str, path: str, *, verb: str, kind: str, body: Any = None,
                query: list[tuple[str, str]] | None = None, content_type: str | None = None,
                accept: str = "application/json") -> dict | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        self._count(verb, kind)
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            resp = self.api.call_api(path, method, query_params=query or [], header_params=headers, body=body,
                                     auth_settings=["BearerToken"], _preload_content=False,
                                     _return_http_data_only=True, _request_timeout=(5, 30))
        except ApiException as exc:
            message, reason = exc.reason or "", ""
            try:
                payload = json.loads(exc.body or "{}")
                message, reason = payload.get("message", message), payload.get("reason", "")
            except ValueError:
                pass
            raise ApiError(exc.status or 0, message, reason) from None
        except (HTTPError, OSError) as exc:
            raise ApiError(0, f"cannot reach the API server: {exc}") from None
        data = resp.data
        return json.loads(data) if data else None

    # ------------------------------------------------------------------------------------- objects

    def apply(self, obj: dict) -> dict:
        """Server-side apply of a whole desired object (creates it when missing)."""
        m = obj["metadata"]
        path = path_of(obj["apiVersion"], obj["kind"], m.get("namespace"), m["name"])
        return self.request("PATCH", path, verb="apply", kind=obj["kind"], body=obj,
                            # Strict: an unknown field is an error, not silently pruned.
                            query=[("fieldManager", self.field_manager), ("force", "true"),
                                   ("fieldValidation", "Strict")],
                            content_type="application/apply-patch+yaml")

    def merge_patch(self, api_version: str, kind: str, namespace: str, name: str, patch: dict,
                    subresource: str | None = None) -> dict:
        path = path_of(api_version, kind, namespace, name, subresource)
        return self.request("PATCH", path, verb="patch", kind=kind, body=patch,
                            query=[("fieldManager", self.field_manager)],
                            content_type="application/merge-patch+json")

    def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict,
                     previous: dict | None) -> dict:
        """Replace our status: keys we no longer report are removed (null in a merge patch)."""
        body = dict(status)
        for key in (previous or {}):
            body.setdefault(key, None)
        return self.merge_patch(api_version, kind, namespace, name, {"status": body}, subresource="status")

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        try:
            self.request("DELETE", path_of(api_version, kind, namespace, name), verb="delete", kind=kind,
                         body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list(self, api_version: str, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict]:
        """Objects of a kind (apiVersion and kind filled in, as a watch would deliver them)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        doc = self.request("GET", path_of(api_version, kind, namespace), verb="list", kind=kind, query=query)
        items = (doc or {}).get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.request("GET", path_of(api_version, kind, namespace, name), verb="get", kind=kind)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def post_event(self, involved: dict, *, reason: str, message: str, warning: bool = False) -> None:
        """A core/v1 Event on `involved` (the FraudPipeline), for transitions and errors only."""
        meta = involved["metadata"]
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": involved.get("apiVersion", spec.API_VERSION),
                               "kind": involved.get("kind", spec.KIND), "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid")},
            "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
            "source": {"component": self.field_manager}, "reportingComponent": self.field_manager,
            "reportingInstance": self.identity, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        self.request("POST", path_of("v1", "Event", meta["namespace"]), verb="create", kind="Event", body=event)

    # ----------------------------------------------------------------------------------- discovery

    def discover(self) -> Capabilities:
        """Which child APIs the cluster serves (one aggregated-discovery request)."""
        doc = self.request("GET", "/apis", verb="discovery", kind="APIGroupDiscoveryList", accept=_DISCOVERY_ACCEPT)
        served: dict[str, dict[str, set[str]]] = {}
        if (doc or {}).get("kind") == "APIGroupDiscoveryList":
            for group in doc.get("items") or []:
                versions = served.setdefault(group["metadata"]["name"], {})
                for v in group.get("versions") or []:
                    versions[v["version"]] = {r["resource"] for r in v.get("resources") or []}
        else:  # API servers without aggregated discovery: one request per group of interest
            for group in (doc or {}).get("groups") or []:
                if group["name"] not in ("kafka.strimzi.io", "flink.apache.org", "monitoring.coreos.com"):
                    continue
                for v in group.get("versions") or []:
                    res = self.request("GET", f"/apis/{v['groupVersion']}", verb="discovery", kind="APIResourceList")
                    served.setdefault(group["name"], {})[v["version"]] = {
                        r["name"] for r in (res or {}).get("resources") or [] if "/" not in r["name"]}
        kafka = served.get("kafka.strimzi.io", {})
        kafka_version = next((v for v in ("v1", "v1beta2") if "kafkatopics" in kafka.get(v, set())), None)
        flink = "flinkdeployments" in served.get("flink.apache.org", {}).get("v1beta1", set())
        mon = served.get("monitoring.coreos.com", {}).get("v1", set())
        monitoring = frozenset(k for k in MONITORING_KINDS if RESOURCES[k].plural in mon)
        return Capabilities(kafka_api_version=kafka_version, flink=flink, monitoring=monitoring)
