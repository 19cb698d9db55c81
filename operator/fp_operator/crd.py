"""Generate the FraudPipeline CustomResourceDefinition from the spec model (the one source).

`fraudpipeline.spec` holds the fields, defaults, ranges and CEL rules; this module turns pydantic's
JSON Schema into a *structural* OpenAPI v3 schema the API server accepts: references inlined,
`Optional` unwrapped, int-or-string marked, defaults of nested objects spelled out so the API
server fills them, titles dropped. `crds/` and the chart's copy are written from here and a unit
test fails when either drifts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema, to_jsonable_python

from fp_operator.status import Reason
from fraudpipeline import spec

CRD_FILE_NAME = f"{spec.PLURAL}.{spec.GROUP}.yaml"
HEADER = (
    "# GENERATED from fraudpipeline/spec.py by `fraudpipe operator crd --write`: do not edit by hand.\n"
    "# FraudPipeline: one custom resource for a real-time card-fraud detection pipeline.\n"
)


class _WithFactoryDefaults(GenerateJsonSchema):
    """pydantic leaves out defaults made by a default_factory; the API server needs them."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        out = super().default_schema(schema)
        factory = schema.get("default_factory")
        if factory is not None and "default" not in out:
            value = factory()
            out["default"] = to_jsonable_python(value, by_alias=True, exclude_none=True)
        return out


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = copy.deepcopy(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        merged = copy.deepcopy(target)
        merged.update(node)  # field-level description/default win over the class's
        node = merged
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) == 1:
            inner = _structural(options[0], defs)
            for k, v in node.items():
                inner.setdefault(k, v) if k != "description" else inner.__setitem__(k, v)
            node = inner
        else:
            types = sorted({_structural(o, defs).get("type") for o in options})
            if types != ["integer", "string"]:
                raise ValueError(f"unsupported union in the spec model: {types}")
            patterns = [o["pattern"] for o in options if o.get("pattern")]
            node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            node["x-kubernetes-int-or-string"] = True
            if patterns:
                node["pattern"] = patterns[0]
    node.pop("title", None)
    if "exclusiveMinimum" in node:  # JSON Schema 2020 number -> OpenAPI v3.0 boolean form
        node["minimum"], node["exclusiveMinimum"] = node.pop("exclusiveMinimum"), True
    if node.get("default") is None:
        node.pop("default", None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("type") == "object" or "properties" in node:
        node["type"] = "object"
        if "properties" in node:
            node.pop("additionalProperties", None)  # extra="forbid": the API server prunes instead
            node["properties"] = {k: _structural(v, defs) for k, v in node["properties"].items()}
            if not node.get("required"):
                node.pop("required", None)
        elif isinstance(node.get("additionalProperties"), dict):
            node["additionalProperties"] = _structural(node["additionalProperties"], defs)
    if node.get("type") == "array" and "items" in node:
        node["items"] = _structural(node["items"], defs)
    return node


_KEY_ORDER = (
    "type",
    "description",
    "default",
    "enum",
    "format",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "anyOf",
    "x-kubernetes-int-or-string",
    "items",
    "additionalProperties",
    "required",
    "properties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-validations",
)


def _ordered(node: Any, *, drop_defaults: bool = False) -> Any:
    """Stable, readable key order (type and description first); optionally without defaults."""
    if isinstance(node, list):
        return [_ordered(n, drop_defaults=drop_defaults) for n in node]
    if not isinstance(node, dict):
        return node
    if drop_defaults:
        node = {k: v for k, v in node.items() if k != "default"}
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    keys = sorted(node, key=lambda k: (rank.get(k, len(rank)), k))
    out = {}
    for k in keys:
        v = node[k]
        if k in ("properties",):
            out[k] = {name: _ordered(sub, drop_defaults=drop_defaults) for name, sub in v.items()}
        elif k in ("default", "enum", "x-kubernetes-validations", "required", "x-kubernetes-list-map-keys"):
            out[k] = v
        else:
            out[k] = _ordered(v, drop_defaults=drop_defaults)
    return out


def openapi_schema(model: type, *, with_defaults: bool = True) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, schema_generator=_WithFactoryDefaults, mode="validation")
    defs = raw.pop("$defs", {})
    return _ordered(_structural(raw, defs), drop_defaults=not with_defaults)


def build_crd() -> dict[str, Any]:
    spec_schema = openapi_schema(spec.FraudPipelineSpec)
    # Only the operator writes status: defaults there would just hide missing fields.
    status_schema = openapi_schema(spec.FraudPipelineStatus, with_defaults=False)
    # The reasons are the operator's closed set (status.Reason): clients can switch on them.
    reason = status_schema["properties"]["conditions"]["items"]["properties"]["reason"]
    reason["enum"] = [r.value for r in Reason]
    status_schema = _ordered(status_schema)
    root = {
        "type": "object",
        "description": (
            "A real-time card-fraud detection pipeline: Kafka topics, a PyFlink job that computes "
            "features and scores every transaction, and an autoscaled model service."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "frauddetect.dev/v1alpha1"},
            "kind": {"type": "string", "description": "FraudPipeline"},
            # The API server allows rules on metadata.name only: children's names derive from it.
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "x-kubernetes-validations": [spec.NAME_RULE.crd()]}},
            },
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{spec.PLURAL}.{spec.GROUP}",
            "labels": {"app.kubernetes.io/name": "fraudpipeline", "app.kubernetes.io/part-of": "fraudpipeline"},
        },
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "listKind": f"{spec.KIND}List",
                "shortNames": list(spec.SHORT_NAMES),
                "categories": ["all", "fraudpipeline"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                            "description": "Whether every part of the pipeline is ready.",
                        },
                        {
                            "name": "Phase",
                            "type": "string",
                            "jsonPath": ".status.phase",
                            "description": "Progressing, Ready, Suspended, Degraded or Invalid.",
                        },
                        {
                            "name": "Model",
                            "type": "string",
                            "jsonPath": ".status.model.tag",
                            "description": "Model tag the model service runs.",
                        },
                        {
                            "name": "Job",
                            "type": "string",
                            "jsonPath": ".status.stream.jobState",
                            "description": "State of the Flink job.",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_crd() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=120, allow_unicode=True)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def crd_targets(root: Path | None = None) -> list[Path]:
    """Every checked-in copy of the CRD: the source folder and the chart's crds/."""
    root = root or repo_root()
    return [root / "crds" / CRD_FILE_NAME, root / "charts" / "fraudpipeline" / "crds" / CRD_FILE_NAME]


def write_crds(root: Path | None = None) -> list[Path]:
    text = render_crd()
    written = []
    for target in crd_targets(root):
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            written.append(target)
    return written


# ------------------------------------------------------------------------------ docs reference

DOC_BEGIN = "<!-- spec-reference:begin (generated by `fraudpipe operator crd --write`) -->"
DOC_END = "<!-- spec-reference:end -->"


def _type_of(node: dict[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    t = node.get("type", "object")
    if t == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map of {_type_of(node['additionalProperties'])}"
    if t == "array":
        return f"list of {_type_of(node.get('items', {}))}"
    return t


def _shape(node: dict[str, Any]) -> str:
    import json

    return json.dumps({k: v for k, v in node.items() if k != "description"}, sort_keys=True)


def spec_reference() -> str:
    """A markdown table of every spec field: path, type, default, rules, description."""
    import json

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rows: list[str] = []

    def walk(node: dict[str, Any], path: str, required: set[str]) -> None:
        props = node.get("properties") or {}
        groups: dict[str, list[str]] = {}
        for name, sub in props.items():
            if sub.get("type") == "object" and sub.get("properties"):
                groups.setdefault(_shape(sub), []).append(name)
        done: set[str] = set()
        for name, sub in props.items():
            if name in done:
                continue
            same = next((g for g in groups.values() if name in g and len(g) > 1), [name])
            done.update(same)
            label = name if len(same) == 1 else "{" + ",".join(same) + "}"
            here = f"{path}.{label}"
            is_object = sub.get("type") == "object" and sub.get("properties")
            if not is_object:
                rules = []
                for key in ("minimum", "maximum", "minLength", "maxLength", "pattern"):
                    if key in sub and not (key == "pattern" and len(sub[key]) > 40):
                        rules.append(f"{key} `{sub[key]}`" if key == "pattern" else f"{key} {sub[key]}")
                if sub.get("x-kubernetes-int-or-string") and sub.get("pattern"):
                    rules.append("a Kubernetes quantity")
                rules += [r["message"] for r in sub.get("x-kubernetes-validations", [])]
                default = (
                    f"`{json.dumps(sub['default']).strip(chr(34))}`"
                    if "default" in sub
                    else ("required" if name in required else "")
                )
                desc = (sub.get("description") or "").replace("|", "\\|").replace("\n", " ")
                rules_txt = "; ".join(rules).replace("|", "\\|")
                rows.append(
                    f"| `{here}` | {_type_of(sub)} | {default.replace('|', '/')} | {desc}"
                    + (f" *Rule: {rules_txt}*" if rules_txt else "")
                    + " |"
                )
            else:
                children = sub.get("properties") or {}
                desc = (
                    sub.get("description", "")
                    if len(same) == 1
                    else "; ".join(f"{m}: {props[m].get('description', '').rstrip('.')}" for m in same)
                )
                default = f"`{json.dumps(sub['default'], separators=(',', ':'))}`" if "default" in sub else ""
                if (
                    len(same) > 1
                    or (
                        "default" in sub
                        and any("default" not in c and c.get("type") != "object" for c in children.values())
                    )
                    or ("default" not in sub and name not in required)
                ):
                    rows.append(f"| `{here}` | object | {default} | {desc} |")
                for r in sub.get("x-kubernetes-validations", []):
                    rows.append(f"| `{here}` | object | | *Rule: {r['message']}* |")
                walk(sub, here, set(sub.get("required") or []))

    walk(schema, "spec", set(schema.get("required") or []))
    head = "| field | type | default | meaning |\n| --- | --- | --- | --- |\n"
    return head + "\n".join(rows) + "\n"


def write_docs(root: Path | None = None) -> Path | None:
    """Refresh the generated block of docs/operator.md; returns the path when it changed."""
    path = (root or repo_root()) / "docs" / "operator.md"
    if not path.exists():
        return None
    text = path.read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        raise ValueError(f"{path} has no {DOC_BEGIN} ... {DOC_END} block")
    before, rest = text.split(DOC_BEGIN, 1)
    _, after = rest.split(DOC_END, 1)
    new = before + DOC_BEGIN + "\n" + spec_reference() + DOC_END + after
    if new != text:
        path.write_text(new)
        return path
    return None
