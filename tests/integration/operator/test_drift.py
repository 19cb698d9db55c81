"""Drift is repaired field by field: every field the builders set, on one object of every child kind,
changed by hand on the real API server (as `kubectl edit` would: another field manager, an update),
is put back by the operator, with one apply each (no fight, no loop).

A field is changed to another value (a string gets a suffix, a number grows, a boolean flips, an
atomic list or map gets one more entry); where the API server refuses that (an enum, a pattern),
the field is removed instead; an item of a keyed list is changed through its non-key fields, and
removed as a whole for its key fields. Where the API server refuses both (immutable fields, a pod
template label the selector needs), nothing can drift, and the test checks that only such fields
were left out.
"""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
from helpers import children, create, pipeline_doc, wait_status

from fp_devtools.bench.operator_harness import describe, wait_for
from fp_operator.builders import Capabilities, build_children
from fp_operator.diff import needs_apply, owned_fields, stamp
from fp_operator.kinds import CHILD_KINDS
from fraudpipeline.spec import parse_pipeline

pytestmark = pytest.mark.integration

Step = str | tuple  # a map key, ("key", {...}) for a keyed list's item, ("value", x) for a set's item

# What the API server never lets anyone change, so there is nothing to repair (checked: every edit
# tried was refused, or changed nothing).
IMMUTABLE = {
    ("Deployment", "spec.selector"),  # immutable
    ("Deployment", "spec.template.metadata.labels.app.kubernetes.io/name"),  # the selector needs them
    ("Deployment", "spec.template.metadata.labels.app.kubernetes.io/instance"),
    ("Deployment", "spec.template.metadata.labels.app.kubernetes.io/component"),
    ("Deployment", 'spec.template.spec.containers.[{"name": "model"}]'),  # the only item of a required list
    ("Service", 'spec.ports.[{"port": 3000, "protocol": "TCP"}]'),
    ("RoleBinding", "roleRef"),  # immutable
}
# Valid other values of enums (appending to them is refused).
OTHER = {
    "IfNotPresent": "Always",
    "Always": "IfNotPresent",
    "RuntimeDefault": "Unconfined",
    "ClusterIP": "NodePort",
    "RollingUpdate": "Recreate",
}


def fields_to_edit(desired, fields: dict, prefix: tuple = ()):
    """(steps, value, is_key) of every field `desired` sets, the list and map shapes read from our
    managedFields entry (as diff.py reads them)."""
    for key, value in desired.items():
        sub = fields.get(f"f:{key}")
        here = (*prefix, key)
        if isinstance(value, dict) and value and sub:
            yield from fields_to_edit(value, sub, here)
        elif isinstance(value, list) and value and sub:  # a keyed list or a set
            for item in value:
                if isinstance(item, dict):
                    keyed = next(
                        json.loads(k[2:])
                        for k, e in sub.items()
                        if k.startswith("k:") and all(item.get(f, v) == v for f, v in json.loads(k[2:]).items())
                    )
                    entry = sub[f"k:{json.dumps(keyed, separators=(',', ':'))}"]
                    step = (*here, ("key", keyed))
                    if entry:
                        for f, v in item.items():
                            if f in keyed:
                                yield step, item, True
                            elif isinstance(v, (dict, list)) and v and entry.get(f"f:{f}"):
                                yield from fields_to_edit({f: v}, entry, step)
                            else:
                                yield (*step, f), v, False
                    else:  # an atomic item (an ownerReference)
                        yield step, item, False
                else:
                    yield (*here, ("value", item)), item, True
        else:
            yield here, value, False


def pointer(live: dict, steps: tuple) -> str | None:
    """JSON pointer of `steps` in `live` (list items found by their keys), None if absent."""
    node, parts = live, []
    for step in steps:
        if isinstance(step, tuple):
            if not isinstance(node, list):
                return None
            match = [
                i
                for i, item in enumerate(node)
                if (
                    item == step[1]
                    if step[0] == "value"
                    else isinstance(item, dict) and all(item.get(k) == v for k, v in step[1].items())
                )
            ]
            if not match:
                return None
            node, part = node[match[0]], str(match[0])
        else:
            if not isinstance(node, dict) or step not in node:
                return None
            node, part = node[step], step
        parts.append(part.replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts)


def value_at(live: dict, ptr: str | None):
    if ptr is None:
        return None
    node = live
    for part in ptr.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        # Down, not up: a topic's partitions can only grow, so a raised count would be kept.
        return value - 1 if value > 1 else value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return [*value, copy.deepcopy(value[-1]) if value and not isinstance(value[-1], str) else "drift"]
    if isinstance(value, dict):  # an atomic map or struct: change what is inside
        for k, v in value.items():
            if isinstance(v, (bool, dict)) and v != {}:
                return {**value, k: changed(v)}
        return {**value, "drift": "x"}
    return "drift"


def edits(ptr: str, before, is_key: bool) -> list[list[dict]]:
    """JSON patches to try, in order, until one makes a difference."""
    if is_key:
        return [[{"op": "remove", "path": ptr}]]
    out = (
        [[{"op": "replace", "path": ptr, "value": OTHER[before]}]]
        if isinstance(before, str) and before in OTHER
        else []
    )
    out += [[{"op": "replace", "path": ptr, "value": changed(before)}], [{"op": "remove", "path": ptr}]]
    if isinstance(before, str) and before in OTHER:  # an enum whose other value excludes its siblings
        parent, leaf = ptr.rsplit("/", 1)
        out.append([{"op": "replace", "path": parent, "value": {leaf: OTHER[before]}}])
    return out


def describe_steps(steps: tuple) -> str:
    return ".".join(s if isinstance(s, str) else f"[{json.dumps(s[1], sort_keys=True)}]" for s in steps)


def json_patch(cluster, obj: dict, ops: list[dict]):
    m = obj["metadata"]
    return cluster.http.patch(
        cluster.path(obj["apiVersion"], obj["kind"], m["namespace"], m["name"]),
        content=json.dumps(ops),
        params={"fieldManager": "kubectl-edit"},
        headers={"Content-Type": "application/json-patch+json"},
    )


def test_every_field_we_set_on_every_child_kind_is_put_back(cluster, operator, namespace, identity, audit):
    ns, kns = namespace("fp"), namespace("kafka")
    doc = pipeline_doc(ns, "drift", example="full", kafka__namespace=kns)
    doc["spec"]["stream"].pop("serviceAccount")  # the operator's own ServiceAccount and RoleBinding
    fp = create(cluster, doc)
    wait_status(cluster, ns, "drift", lambda f: True, "first status")
    desired = {}
    for d in build_children(parse_pipeline(fp), Capabilities()):
        desired.setdefault(d["kind"], stamp(d))  # one object of each kind
    assert set(desired) == set(CHILD_KINDS)

    def live(kind: str) -> dict:
        d = desired[kind]
        return children(cluster, ns, "drift", kns)[(kind, d["metadata"]["namespace"], d["metadata"]["name"])]

    def get(kind: str) -> dict | None:
        d = desired[kind]
        return cluster.get(d["apiVersion"], kind, d["metadata"]["namespace"], d["metadata"]["name"])

    todo: dict[str, list] = {}
    for kind, d in desired.items():
        body = {k: v for k, v in d.items() if k not in ("apiVersion", "kind")}
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in ("name", "namespace")}
        todo[kind] = list(fields_to_edit(body, owned_fields(live(kind))))
    assert sum(len(v) for v in todo.values()) > 200, {k: len(v) for k, v in todo.items()}

    since = audit.offset()
    edited: Counter[str] = Counter()
    refused: set[tuple[str, str]] = set()
    for round_ in range(max(len(v) for v in todo.values())):
        waiting = {}
        for kind, leaves in todo.items():
            if round_ >= len(leaves):
                continue
            steps, value, is_key = leaves[round_]
            obj = get(kind)
            ptr = pointer(obj, steps)
            assert ptr is not None, f"{kind} {describe_steps(steps)} missing before the edit"
            before = value_at(obj, ptr)
            for ops in edits(ptr, before, is_key):
                r = json_patch(cluster, obj, ops)
                assert r.status_code in (200, 422, 400), r.text
                # Drift: the value changed, or (a removed field the API server defaulted back) it is
                # no longer ours in managedFields, the API server's own record.
                if r.status_code == 200 and (
                    value_at(r.json(), pointer(r.json(), steps)) != before or needs_apply(desired[kind], r.json())
                ):
                    waiting[kind] = (steps, before)
                    edited[kind] += 1
                    break
            else:
                refused.add((kind, describe_steps(steps)))

        def restored(waiting: dict = waiting) -> bool:
            for kind, (steps, before) in list(waiting.items()):
                o = get(kind)
                if o is not None and value_at(o, pointer(o, steps)) == before and not needs_apply(desired[kind], o):
                    del waiting[kind]
            return not waiting

        try:
            wait_for(restored, 15, f"round {round_} put back")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {[(k, describe_steps(s)) for k, (s, _) in waiting.items()]}") from None

    assert all(any(path.startswith(prefix) for k, prefix in IMMUTABLE if k == kind) for kind, path in refused), (
        "\n".join(map(str, sorted(refused)))
    )
    assert set(edited) == set(CHILD_KINDS)
    # One apply per hand edit of an object: no fight with the editor, no apply the edit did not need.
    applies = Counter(
        w.split()[1]
        for w in describe(audit.writes(identity.username, since))
        if w.startswith("patch ") and "/status" not in w and "fraudpipelines" not in w
    )
    assert applies == Counter({CHILD_KINDS[k].plural: n for k, n in edited.items()}), (applies, edited)
