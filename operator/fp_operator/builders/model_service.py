"""The model service: Deployment + Service + autoscaling/v2 HPA + PodDisruptionBudget.

The Deployment never carries `spec.replicas` (the HPA owns it) except when the pipeline is
suspended: then we apply `replicas: 0`, which the HPA controller leaves alone (a target at zero
replicas disables autoscaling). On resume the field is dropped from our apply, server-side apply
removes it, the API server defaults it to 1 and the HPA takes over again.

The container contract (environment, port, probes) is docs/image-contracts.md.
"""

from __future__ import annotations

from fp_operator import labels, names
from fp_operator.kinds import api_version
from fraudpipeline.spec import SERVING_PORT, FraudPipeline

BENTOML_HOME = "/home/bentoml/bentoml"


def _env(p: FraudPipeline) -> list[dict]:
    m = p.spec.model
    env = [
        {"name": "FRAUDPIPE_MODEL_TAG", "value": m.model_tag},
        {"name": "FRAUDPIPE_WORKERS", "value": str(m.workers)},
        {"name": "BENTOML_HOME", "value": BENTOML_HOME},
    ]
    if m.threshold is not None:
        env.append({"name": "FRAUDPIPE_THRESHOLD", "value": repr(float(m.threshold))})
    return env


def _resources(p: FraudPipeline) -> dict:
    r = p.spec.model.resources
    out = {}
    for key, lst in (("requests", r.requests), ("limits", r.limits)):
        values = {k: str(v) for k, v in (("cpu", lst.cpu), ("memory", lst.memory)) if v is not None}
        if values:
            out[key] = values
    return out


def build_model_deployment(p: FraudPipeline, run_as_user: int = 1000) -> dict:
    m = p.spec.model
    spec: dict = {
        "selector": {"matchLabels": labels.selector_labels(p, "model")},
        "revisionHistoryLimit": 3,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": labels.pod_labels(p, "model"),
                "annotations": {labels.MODEL_TAG_ANNOTATION: m.model_tag},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": run_as_user,
                    "runAsGroup": run_as_user,
                    "fsGroup": run_as_user,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "model",
                        "image": m.image,
                        "imagePullPolicy": m.image_pull_policy,
                        "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
                        "env": _env(p),
                        "resources": _resources(p),
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True,
                        },
                        # /livez answers as soon as the server runs; /readyz only once the model is loaded.
                        "startupProbe": {
                            "httpGet": {"path": "/livez", "port": "http"},
                            "periodSeconds": 2,
                            "failureThreshold": 60,
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/livez", "port": "http"},
                            "periodSeconds": 10,
                            "failureThreshold": 3,
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/readyz", "port": "http"},
                            "periodSeconds": 5,
                            "failureThreshold": 2,
                        },
                    }
                ],
            },
        },
    }
    if p.spec.suspend:
        spec = {"replicas": 0, **spec}
    return {
        "apiVersion": api_version("Deployment"),
        "kind": "Deployment",
        "metadata": labels.metadata(p, names.model(p), "model"),
        "spec": spec,
    }


def build_model_service(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("Service"),
        "kind": "Service",
        "metadata": labels.metadata(p, names.model(p), "model"),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector_labels(p, "model"),
            "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def build_model_hpa(p: FraudPipeline) -> dict:
    a = p.spec.model.autoscaling
    return {
        "apiVersion": api_version("HorizontalPodAutoscaler"),
        "kind": "HorizontalPodAutoscaler",
        "metadata": labels.metadata(p, names.model(p), "model"),
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version("Deployment"), "kind": "Deployment", "name": names.model(p)},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": a.target_cpu_utilization_percentage},
                    },
                }
            ],
        },
    }


def build_model_pdb(p: FraudPipeline) -> dict:
    return {
        "apiVersion": api_version("PodDisruptionBudget"),
        "kind": "PodDisruptionBudget",
        "metadata": labels.metadata(p, names.model(p), "model"),
        # maxUnavailable, not minAvailable: a single replica must still be drainable.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels.selector_labels(p, "model")}},
    }
