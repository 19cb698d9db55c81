"""Is a live object already what we would apply? (pure)

The operator compares the desired child with the watched one before applying, so a steady state
costs no API writes. Two checks, both read from what the API server itself records:
- the hash of the desired object, stamped on the child as an annotation when we apply it, tells
  whether what we want changed since our last apply (including fields we stopped setting, which
  server-side apply then removes, e.g. `replicas: 0` after a resume);
- our field manager's entry in `metadata.managedFields` tells whether someone changed what we set.
  Server-side apply records there every field our last apply set; when another manager changes
  or removes one of them (kubectl edit, a patch, a forced apply), that field leaves our entry. So
  every field the desired object sets must still be in our entry. How lists and maps merge is
  read from the entry too (`k:{...}` items of keyed lists, `v:` items of sets, an empty entry for
  an atomic list, map or struct), never guessed; values are never compared, so the API server's
  defaulting and canonical forms (quantities, say) cannot look like drift.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fp_operator.labels import APPLIED_HASH, FIELD_MANAGER


def desired_hash(desired: dict) -> str:
    return hashlib.sha256(json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def stamp(desired: dict) -> dict:
    """The object to apply: `desired` plus the annotation holding its hash (shares the rest)."""
    meta = desired["metadata"]
    annotations = {**(meta.get("annotations") or {}), APPLIED_HASH: desired_hash(desired)}
    return {**desired, "metadata": {**meta, "annotations": annotations}}


def owned_fields(live: dict) -> dict | None:
    """The fields our last server-side apply set (fieldsV1), or None when we never applied it."""
    entries = [
        f.get("fieldsV1") or {}
        for f in (live.get("metadata") or {}).get("managedFields") or []
        if f.get("manager") == FIELD_MANAGER and f.get("operation") == "Apply" and not f.get("subresource")
    ]
    if not entries:
        return None
    merged = entries[0]
    for e in entries[1:]:  # one entry per apiVersion we applied with
        merged = _union(merged, e)
    return merged


def _union(a: dict, b: dict) -> dict:
    """Two field sets as one (new dicts: the cached entries are shared, never changed)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = _union(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else out.get(k, v)
    return out


def _item_entry(fields: dict, item: dict) -> dict | None:
    """The `k:{...}` entry of a keyed list that stands for `item` (its key fields agree)."""
    for name, sub in fields.items():
        if not name.startswith("k:"):
            continue
        key = json.loads(name[2:])
        # A key field the server defaulted (absent from our item) cannot tell items apart here.
        if all(item.get(k, v) == v for k, v in key.items()):
            return sub if isinstance(sub, dict) else {}
    return None


def unowned(desired: Any, fields: dict, path: str = "") -> list[str]:
    """Paths `desired` sets that are missing from our managed fields `fields` (empty: no drift)."""
    out: list[str] = []
    if isinstance(desired, dict):
        for key, value in desired.items():
            if value is None:
                continue
            sub = fields.get(f"f:{key}")
            if sub is None:
                out.append(f"{path}.{key}")
            elif isinstance(value, (dict, list)) and sub:  # an empty entry: owned as a whole (atomic)
                out += unowned(value, sub, f"{path}.{key}")
        return out
    if isinstance(desired, list) and fields:  # an empty entry: an atomic list, owned as a whole
        for i, item in enumerate(desired):
            if isinstance(item, dict):
                entry = _item_entry(fields, item)
                if entry is None:
                    out.append(f"{path}[{i}]")
                elif entry:  # an empty entry: an atomic item (an ownerReference, say), owned as a whole
                    out += unowned(item, entry, f"{path}[{i}]")
            elif f"v:{json.dumps(item, separators=(',', ':'))}" not in fields:
                out.append(f"{path}[{i}]")
    return out


def needs_apply(stamped: dict, live: dict | None) -> list[str]:
    """Why `stamped` must be applied over `live` (empty: it is already there)."""
    if live is None:
        return ["missing"]
    want = stamped["metadata"]["annotations"][APPLIED_HASH]
    if ((live.get("metadata") or {}).get("annotations") or {}).get(APPLIED_HASH) != want:
        return [f".metadata.annotations.{APPLIED_HASH}"]
    fields = owned_fields(live)
    if fields is None:
        return ["not applied by us"]
    body = {k: v for k, v in stamped.items() if k not in ("apiVersion", "kind", "status")}
    body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in ("name", "namespace")}
    return unowned(body, fields)
