"""kopf handlers: thin. They configure kopf and feed its watch events to the runtime; every decision
is in `reconciler.py`.

kopf only watches: no change handlers, so it never writes to our objects (no finalizer, progress
or diff-base annotations) and a standby replica can watch without writing anything. Our finalizer
is the reconciler's. Events are posted in one place, the reconciler (kopf's posting is off).

`kopf run -m fp_operator.handlers` works too (the runtime is then built from the environment);
`fraudpipe operator run` passes a ready runtime through kopf's memo.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from fp_operator import kube
from fp_operator.kinds import CHILDREN, PIPELINE, Kind
from fp_operator.labels import KOPF_FINALIZER, MANAGED_BY_SELECTOR
from fp_operator.runtime import Runtime


def watch_selector(k: Kind) -> tuple[str, ...]:
    """kopf's resource selector: with several versions, none named (kopf takes the served, preferred one)."""
    if len(k.versions) > 1:
        return (k.group, k.plural)
    return (k.group, k.versions[0], k.plural) if k.group else (k.versions[0], k.plural)


# Child kinds we watch (server-side filtered to our label): their changes update the pipeline's
# status and undo hand edits.
CHILD_RESOURCES: list[tuple[str, ...]] = [watch_selector(k) for k in CHILDREN]


def _runtime(memo: Any) -> Runtime:
    return memo["runtime"]


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """The reconciler's own credentials (kube.login): kopf and the reconciler are one identity."""
    return kube.login()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    # kopf's own marks would live under our domain; with no change handlers it makes none.
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PIPELINE.group)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PIPELINE.group, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    for selector in CHILD_RESOURCES:
        settings.watching.label_selectors[selector] = MANAGED_BY_SELECTOR
    if "runtime" not in memo:
        memo["runtime"] = Runtime.from_environment()
    _runtime(memo).start()
    logger.info("fraudpipeline operator started")


@kopf.on.cleanup()
def shutdown(memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).stop()


@kopf.on.event(*watch_selector(PIPELINE))
async def pipeline_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).observe(type, dict(body))


async def child_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _runtime(memo).observe(type, dict(body))


for _selector in CHILD_RESOURCES:
    kopf.on.event(*_selector, id=f"child-{_selector[-1]}")(child_event)


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    return len(_runtime(memo).queue)


@kopf.on.probe(id="leader")
def leading(memo: kopf.Memo, **_: Any) -> bool:
    return _runtime(memo).leading
