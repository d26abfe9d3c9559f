"""OpenAPI 3.0 schema helpers and the argument check behind ``InputSchema.validate`` (pure).

* :func:`deref` follows local ``$ref`` pointers; :func:`type_text` and :func:`allowed_values`
  describe a field for people and models ('string or null', the enum values).
* :func:`checkable` rewrites the OpenAPI dialect (``nullable``, boolean ``exclusiveMinimum``)
  into JSON Schema 2020-12 for ``jsonschema``, keeping ``components`` so ``$ref`` resolves.
* :func:`problems` lists what is wrong with some arguments, one line per field: unknown
  fields (compared with ``properties``, since fal's schemas do not forbid extra ones), missing
  required ones, wrong types, values outside the enum or the bounds.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from jsonschema.exceptions import ValidationError as SchemaError

    from tools.fal.inputschema import InputField

__all__ = [
    "ref_name", "deref", "variants", "merged_properties", "type_text", "allowed_values", "checkable", "describe",
    "problems"
]


_REF_PREFIX = "#/components/schemas/"
_LITERAL_KEYS = frozenset({"enum", "const", "default", "example", "examples"})
_MAX_DEPTH = 8
_SHORT = 60


def ref_name(ref: Any) -> str | None:
    """'FluxDevInput' for '#/components/schemas/FluxDevInput'."""
    return ref[len(_REF_PREFIX):] if isinstance(ref, str) and ref.startswith(_REF_PREFIX) else None


def _pointer(doc: Mapping[str, Any], ref: str) -> Any:
    node: Any = doc
    for raw in ref[2:].split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def deref(doc: Mapping[str, Any], node: Any) -> Any:
    """`node` with local $refs followed (siblings of $ref kept); None if one dangles."""
    for _ in range(_MAX_DEPTH):
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            return node
        ref = node["$ref"]
        target = _pointer(doc, ref) if ref.startswith("#/") else None
        if not isinstance(target, Mapping):
            return None
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **extra} if extra else target
    return node


def variants(doc: Mapping[str, Any], spec: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """The schema and, for anyOf/oneOf/allOf, each member (refs followed)."""
    node = deref(doc, spec)
    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return []
    out = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        for member in node.get(key) or ():
            out.extend(variants(doc, member, depth + 1))
    return out


def merged_properties(doc: Mapping[str, Any],
                      schema: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Properties and required names of an object schema, allOf members merged in."""
    props: dict[str, Any] = {}
    required: set[str] = set()
    parts: list[Any] = [schema]
    for depth in range(_MAX_DEPTH):
        if depth >= len(parts):
            break
        part = parts[depth]
        for member in part.get("allOf") or ():
            resolved = deref(doc, member)
            if isinstance(resolved, Mapping):
                parts.append(resolved)
    for part in parts:
        for name, spec in (part.get("properties") or {}).items():
            props.setdefault(name, spec)
        required.update(r for r in part.get("required") or () if isinstance(r, str))
    return props, required


def type_text(doc: Mapping[str, Any], spec: Any, depth: int = 0) -> str:
    """A readable type: 'string', 'array of string', 'integer or null', 'ImageSize object'."""
    node = deref(doc, spec)
    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return "any"
    name = ref_name(spec.get("$ref")) if isinstance(spec, Mapping) else None
    parts: list[str] = []
    for key in ("anyOf", "oneOf"):
        for member in node.get(key) or ():
            parts.append(type_text(doc, member, depth + 1))
    if not parts:
        if len(node.get("allOf") or ()) == 1:
            return type_text(doc, node["allOf"][0], depth + 1)
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        if not kinds and node.get("enum"):
            kinds = sorted({_json_type(v) for v in node["enum"] if v is not None})
        for kind in kinds:
            if kind == "array":
                items = node.get("items")
                parts.append(f"array of {type_text(doc, items, depth + 1)}" if items else "array")
            elif kind == "object" and name:
                parts.append(f"{name} object")
            else:
                parts.append(str(kind))
        if node.get("nullable") is True:
            parts.append("null")
    unique = list(dict.fromkeys(p for p in parts if p))
    return " or ".join(unique) if unique else "any"


def allowed_values(doc: Mapping[str, Any], spec: Any) -> tuple[Any, ...] | None:
    """Every enum/const value the field takes (across anyOf members), or None."""
    values: list[Any] = []
    for part in variants(doc, spec):
        for v in part.get("enum") or ():
            if v is not None and v not in values:
                values.append(v)
        if "const" in part and part["const"] is not None and part["const"] not in values:
            values.append(part["const"])
    return tuple(values) if values else None


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: (v if k in _LITERAL_KEYS else _convert(v)) for k, v in node.items()}
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(flag), bool):
            if out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
    if out.pop("nullable", False) is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
    return out


def checkable(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The input schema as JSON Schema 2020-12, with the document's components for $ref."""
    root: dict[str, Any] = _convert(schema)
    root["components"] = _convert(doc.get("components") or {})
    return root


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _SHORT else text[:_SHORT - 3] + "..."


def _values(values: Iterable[Any]) -> str:
    return ", ".join(_short(v) for v in values)


def _label(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(type_: str, enum: tuple[Any, ...] | None) -> str:
    """'string; allowed values: "a", "b"' for a problem line."""
    return type_ + (f"; allowed values: {_values(enum)}" if enum else "")


def problems(schema: Mapping[str, Any], arguments: Any,
             fields: tuple[InputField, ...]) -> list[str]:
    """What is wrong with `arguments`, one line per problem, in field order."""
    if not isinstance(arguments, Mapping):
        return [f"arguments must be a JSON object of field names to values, got "
                f"{_json_type(arguments)}"]
    by_name = {f.name: f for f in fields}
    out: list[str] = []
    unknown = [k for k in arguments if k not in by_name]
    for key in unknown:
        close = difflib.get_close_matches(str(key), list(by_name), n=1, cutoff=0.6)
        out.append(f"unknown field '{str(key)[:_SHORT]}'" + (f" (did you mean '{close[0]}'?)"
                                                       if close else ""))
    if unknown and by_name:
        out.append("the fields it takes: " + ", ".join(by_name))
    for f in fields:
        if f.required and f.name not in arguments:
            out.append(f"missing required field '{f.name}' ({describe(f.type, f.enum)})")
    # Imported here: jsonschema is only needed once arguments are checked, not to import tools.
    import jsonschema
    import referencing.exceptions

    try:
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(dict(arguments)))
    except (referencing.exceptions.Unresolvable, jsonschema.SchemaError, RecursionError):
        errors = []  # a broken schema: the name checks above still stand
    order = {name: i for i, name in enumerate(by_name)}
    first = {"type": 0, "anyOf": 1, "oneOf": 1, "enum": 2, "const": 2}
    errors.sort(key=lambda e: (order.get(e.absolute_path[0], len(order)) if e.absolute_path
                               else -1, [str(p) for p in e.absolute_path],
                               first.get(str(e.validator), 3)))
    done: set[tuple[Any, ...]] = set()
    for err in errors:
        where = tuple(err.absolute_path)
        if where and where in done:
            continue  # one line per field: its type (or first) problem, allowed values shown
        line = _error_line(schema, err, by_name)
        if line and line not in out:
            out.append(line)
            done.add(where)
    return out


def _error_line(root: Mapping[str, Any], err: SchemaError,
                by_name: Mapping[str, InputField]) -> str | None:
    path = list(err.absolute_path)
    kind = err.validator
    if not path:  # top level: unknown and missing fields are already listed
        return None if kind in ("required", "additionalProperties", "type") else err.message
    if kind in ("anyOf", "oneOf"):
        # The member whose type fits tells what is wrong (a bound, a nested field, the enum).
        ctx = list(err.context or ())
        deeper = [c for c in ctx if len(c.absolute_path) > len(path)
                  or c.validator not in ("type", "enum", "const")]
        if deeper:
            return _error_line(root, min(deeper, key=lambda c: len(c.absolute_path)), by_name)
        if any(c.validator in ("enum", "const") for c in ctx):
            kind = "enum"
    top = by_name.get(path[0]) if len(path) == 1 else None
    type_ = top.type if top else type_text(root, err.schema)
    enum = top.enum if top else allowed_values(root, err.schema)
    label = f"field '{_label(path)}' ({describe(type_, enum)})"
    value = err.instance
    if kind == "required":
        missing = [r for r in err.validator_value if r not in value]
        return f"{label}: missing required {', '.join(map(repr, missing))}"
    if kind == "additionalProperties":
        known = set(err.schema.get("properties") or {})
        extra = [k for k in value if k not in known]
        return f"{label}: unknown key(s) {', '.join(map(repr, extra))}"
    if kind in ("type", "anyOf", "oneOf"):
        return f"{label}: got {_json_type(value)} {_short(value)}"
    if kind in ("enum", "const"):
        return f"{label}: {_short(value)} is not an allowed value"
    message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
    return f"{label}: {message}"
