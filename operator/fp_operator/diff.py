"""Is a live object already what we would apply? (pure)

The operator compares the desired child with the watched one before applying, so a steady state
costs no API writes. Two checks, both needed:
- the hash of the desired object, stamped on the child as an annotation when we apply it, catches
  fields we stopped setting (server-side apply removes those, e.g. `replicas: 0` after a resume);
- field-by-field comparison catches drift (someone edited or removed a field we set). Fields the
  API server or other controllers add (defaults, status, clusterIP, replicas owned by the HPA) are
  ignored. Lists of named items are matched by name (as server-side apply merges them), other
  lists position by position.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_LIST_KEYS = ("name", "uid", "containerPort", "port", "type", "alert", "record")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")
_SUFFIX = {"": 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10) ** 3,
           "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15,
           "E": Decimal(10) ** 18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50,
           "Ei": 2 ** 60}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity as a number ("500m" -> 0.5, "1Gi" -> 1073741824), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    m = _QUANTITY.match(str(value))
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * Decimal(_SUFFIX[suffix])


def differences(desired: Any, live: Any, path: str = "") -> list[str]:
    """Paths where `live` does not hold what `desired` sets (empty list: nothing to apply)."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return [path or "."] if desired or live not in (None, {}) else []
        out: list[str] = []
        for key, value in desired.items():
            out += differences(value, live.get(key), f"{path}.{key}")
        return out
    if isinstance(desired, list):
        if live is None and not desired:
            return []
        if not isinstance(live, list):
            return [path]
        key = _list_key(desired)
        if key is not None:
            by_key = {item.get(key): item for item in live if isinstance(item, dict)}
            out = []
            for item in desired:
                out += differences(item, by_key.get(item[key]), f"{path}[{key}={item[key]}]")
            return out
        if len(desired) != len(live):
            return [path]
        out = []
        for i, (d, l) in enumerate(zip(desired, live)):
            out += differences(d, l, f"{path}[{i}]")
        return out
    if desired == live and type(desired) is type(live):
        return []
    if isinstance(desired, (int, float)) and isinstance(live, (int, float)) and not isinstance(desired, bool) \
            and not isinstance(live, bool) and desired == live:
        return []
    if "resources" in path or path.endswith((".cpu", ".memory")):
        # The API server canonicalises quantities ("0.5" -> "500m", "1024Mi" -> "1Gi").
        d, l = quantity(desired), quantity(live)
        if d is not None and d == l:
            return []
    return [path]


def _list_key(items: list) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _LIST_KEYS:
        if all(key in i for i in items) and len({str(i[key]) for i in items}) == len(items):
            return key
    return None


APPLIED_HASH = "frauddetect.dev/applied-hash"


def desired_hash(desired: dict) -> str:
    return hashlib.sha256(json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def stamp(desired: dict) -> dict:
    """The object to apply: `desired` plus the annotation holding its hash."""
    out = copy.deepcopy(desired)
    out["metadata"].setdefault("annotations", {})[APPLIED_HASH] = desired_hash(desired)
    return out


def needs_apply(stamped: dict, live: dict | None) -> list[str]:
    """Why `stamped` must be applied over `live` (empty: it is already there)."""
    if live is None:
        return ["missing"]
    return differences({k: v for k, v in stamped.items() if k != "status"}, live)
