"""Labels, selectors, annotations and owner references of children: one place.

Selector labels are a stable subset (a Deployment's selector is immutable); kopf's and kubectl's
own annotations are never copied from the FraudPipeline to its children.
"""

from __future__ import annotations

from fraudpipeline.spec import API_VERSION, GROUP, KIND, FraudPipeline

FIELD_MANAGER = "fraudpipeline-operator"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_SELECTOR = f"{MANAGED_BY}={FIELD_MANAGER}"
PIPELINE = f"{GROUP}/pipeline"
PIPELINE_NAMESPACE = f"{GROUP}/pipeline-namespace"
MODEL_TAG_ANNOTATION = f"{GROUP}/model-tag"
APPLIED_HASH = f"{GROUP}/applied-hash"  # hash of the desired child we last applied (diff.py)
# Ours, set and removed by the reconciler: the pipeline's topics are released or deleted first.
FINALIZER = f"{GROUP}/finalizer"
# kopf's, which it would add only for change handlers; we have none (kopf only watches), but it
# must differ from ours: kopf removes its finalizer from objects no handler of its needs.
KOPF_FINALIZER = f"{GROUP}/kopf-finalizer"
TOPIC_ROLE = f"{GROUP}/topic-role"
REPORTING_CONTROLLER = f"{GROUP}/{FIELD_MANAGER}"  # of the events we post
STRIMZI_CLUSTER = "strimzi.io/cluster"
STRIMZI_MANAGED = "strimzi.io/managed"

COMPONENTS = ("topic", "bridge", "stream", "model", "monitoring")


def selector_labels(p: FraudPipeline, component: str) -> dict[str, str]:
    """Stable labels that select a component's pods."""
    return {
        "app.kubernetes.io/name": "fraudpipeline",
        "app.kubernetes.io/instance": p.name,
        "app.kubernetes.io/component": component,
    }


def labels(p: FraudPipeline, component: str) -> dict[str, str]:
    """Labels of every child: recommended app.kubernetes.io set plus the owning pipeline."""
    assert component in COMPONENTS, component
    return {
        **selector_labels(p, component),
        "app.kubernetes.io/part-of": "fraudpipeline",
        MANAGED_BY: FIELD_MANAGER,
        PIPELINE: p.name,
        PIPELINE_NAMESPACE: p.namespace,
    }


def pod_labels(p: FraudPipeline, component: str) -> dict[str, str]:
    """Labels of pod templates: no managed-by, so objects other controllers make from the template
    (ReplicaSets, the Flink operator's JobManager Deployment) never look like our children."""
    return {
        **selector_labels(p, component),
        "app.kubernetes.io/part-of": "fraudpipeline",
        PIPELINE: p.name,
        PIPELINE_NAMESPACE: p.namespace,
    }


def owner_of(body_labels: dict[str, str] | None) -> tuple[str, str] | None:
    """(namespace, name) of the pipeline a child belongs to, from its labels."""
    body_labels = body_labels or {}
    if body_labels.get(MANAGED_BY) != FIELD_MANAGER or PIPELINE not in body_labels:
        return None
    return body_labels.get(PIPELINE_NAMESPACE, ""), body_labels[PIPELINE]


def owner_reference(p: FraudPipeline) -> dict:
    """Controller owner reference to the pipeline (same-namespace children only)."""
    if not p.metadata.uid:
        raise ValueError(f"FraudPipeline {p.namespace}/{p.name} has no metadata.uid: read it from the API server")
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": p.name,
        "uid": p.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    p: FraudPipeline,
    name: str,
    component: str,
    *,
    namespace: str | None = None,
    owned: bool = True,
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict:
    meta: dict = {
        "name": name,
        "namespace": namespace or p.namespace,
        "labels": {**labels(p, component), **(extra_labels or {})},
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    if owned:
        meta["ownerReferences"] = [owner_reference(p)]
    return meta
