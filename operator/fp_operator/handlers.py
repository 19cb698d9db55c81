"""kopf handlers: thin. They configure kopf, feed watch events to the runtime and run the
finalizer; every decision is in `reconciler.py`.

`kopf run -m fp_operator.handlers` works too (the runtime is then built from the environment);
`fraudpipe operator run` passes a ready runtime through kopf's memo.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from fraudpipeline.spec import GROUP, PLURAL, VERSION
from fp_operator.kube import ApiError
from fp_operator.labels import FINALIZER, MANAGED_BY_SELECTOR
from fp_operator.runtime import Runtime

log = logging.getLogger("fp_operator.cleanup")

# Child kinds we watch (server-side filtered to our label): their changes update the pipeline's
# status and undo hand edits. No version for Strimzi: kopf takes the served, preferred one.
CHILD_RESOURCES: list[tuple[str, ...]] = [
    ("kafka.strimzi.io", "kafkatopics"),
    ("kafka.strimzi.io", "kafkabridges"),
    ("flink.apache.org", "v1beta1", "flinkdeployments"),
    ("apps", "v1", "deployments"),
    ("v1", "services"),
    ("v1", "serviceaccounts"),
    ("v1", "configmaps"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("monitoring.coreos.com", "v1", "servicemonitors"),
    ("monitoring.coreos.com", "v1", "podmonitors"),
    ("monitoring.coreos.com", "v1", "prometheusrules"),
]


def _runtime(memo: Any) -> Runtime:
    return memo["runtime"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    # kopf's own marks live under our domain, never under kopf.zalando.org.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    # Events are posted by the reconciler for transitions only.
    settings.posting.level = logging.WARNING
    for selector in CHILD_RESOURCES:
        settings.watching.label_selectors[selector] = MANAGED_BY_SELECTOR
    if "runtime" not in memo:
        memo["runtime"] = Runtime.from_environment()
    _runtime(memo).start()
    logger.info("fraudpipeline operator started")


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).observe(type, dict(body))


async def child_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).observe(type, dict(body))


for _selector in CHILD_RESOURCES:
    kopf.on.event(*_selector, id=f"child-{_selector[-1]}")(child_event)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup")
def cleanup(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    try:
        done = _runtime(memo).cleanup(dict(body))
    except ApiError as exc:
        raise kopf.TemporaryError(f"cleaning up topics failed: {exc}", delay=5) from exc
    for line in done:
        log.info("%s/%s: %s", body["metadata"]["namespace"], body["metadata"]["name"], line)


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    return len(_runtime(memo).queue)
