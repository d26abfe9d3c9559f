"""An endpoint's input schema, read from its OpenAPI document (shared/fal-api.md 3.2, 3.6).

``GET /v1/models?endpoint_id=X&expand=openapi-3.0`` returns the endpoint's OpenAPI 3.0
document; the input is the schema its POST path's ``requestBody`` points at (a ``$ref`` into
``components.schemas``, named after the model). :func:`input_schema_from_openapi` turns that
into an :class:`InputSchema`: its fields (type, required, allowed values, default, whether it
takes a media URL) and :meth:`InputSchema.validate`, which checks submit arguments with
``jsonschema`` and raises one :class:`~tools.fal.errors.ArgumentsInvalid` naming every field
at fault (see :mod:`tools.fal.schemacheck`). When no schema can be had (404, the network, a
document without one) the answer is a :class:`SchemaUnavailable` with the reason: a caller
may still submit, unchecked. :class:`SchemaCache` keeps schemas per endpoint for a TTL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import TYPE_CHECKING, Any

from tools.fal import errors as E
from tools.fal import schemacheck as C
from tools.fal.urls import parse_endpoint_id

if TYPE_CHECKING:  # pragma: no cover
    from tools.fal.client import FalClient

__all__ = [
    "UNAVAILABLE_TTL_S", "InputField", "InputSchema", "SchemaUnavailable", "find_input", "input_schema_from_openapi",
    "SchemaCache", "compact_fields"
]


_URL = re.compile(r"(?i)(https?|data|s3|gs|ftp):")
_MEDIA_FORMATS = frozenset({"uri", "url", "iri", "uri-reference", "binary", "data-url"})
UNAVAILABLE_TTL_S = 30.0
"""Longest time a 'no schema' answer is reused before asking again."""


@dataclass(frozen=True, slots=True)
class InputField:
    """One top-level input field, as the model should be told about it."""

    name: str
    type: str
    """Readable type: 'string', 'integer', 'array of string', 'string or null', ..."""
    required: bool
    enum: tuple[Any, ...] | None = None
    """Allowed values, when the schema lists them."""
    has_default: bool = False
    default: Any = None
    media: bool = False
    """True for a media URL field (``*_url``, ``*_urls``, format uri): a local file must be
    uploaded first and its URL passed instead."""
    description: str | None = None

    def compact(self) -> dict[str, Any]:
        """The short JSON form (name, type, required; enum, default, media when set)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.has_default:
            out["default"] = self.default
        if self.media:
            out["media"] = True
        return out


@dataclass(frozen=True)
class InputSchema:
    """An endpoint's input schema; ``schema`` is the JSON Schema checked against."""

    endpoint_id: str
    name: str | None
    """The component's name, e.g. 'FluxDevInput' (None for an inline schema)."""
    fields: tuple[InputField, ...]
    schema: Mapping[str, Any] = dc_field(repr=False)
    available: bool = dc_field(default=True, init=False)

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required fields."""
        return tuple(f.name for f in self.fields if f.required)

    @property
    def defaults(self) -> dict[str, Any]:
        """Field name -> default, for the fields that have one."""
        return {f.name: f.default for f in self.fields if f.has_default}

    @property
    def media_fields(self) -> tuple[str, ...]:
        """Names of the fields that take media URLs (upload local files into these)."""
        return tuple(f.name for f in self.fields if f.media)

    def field(self, name: str) -> InputField | None:
        """The field called `name`, if the schema has it."""
        return next((f for f in self.fields if f.name == name), None)

    def local_files(self, arguments: Mapping[str, Any]) -> list[tuple[str, int | None, str]]:
        """Media fields holding something other than a URL (a local path to upload first):
        (field, index in a list field or None, the value)."""
        found: list[tuple[str, int | None, str]] = []
        for name in self.media_fields:
            value = arguments.get(name) if isinstance(arguments, Mapping) else None
            items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for index, item in items:
                if isinstance(item, str) and item.strip() and not _URL.match(item.strip()):
                    found.append((name, index, item))
        return found

    def compact(self) -> list[dict[str, Any]]:
        """Every field in the short form search_models shows."""
        return [f.compact() for f in self.fields]

    def problems(self, arguments: Any) -> list[str]:
        """One readable line per field at fault; empty when the arguments fit."""
        return C.problems(self.schema, arguments, self.fields)

    def validate(self, arguments: Any) -> None:
        """Raise ArgumentsInvalid (every problem named) unless the arguments fit."""
        found = self.problems(arguments)
        if found:
            raise E.ArgumentsInvalid(
                f"arguments for {self.endpoint_id} do not fit its input schema "
                f"({len(found)} problem{'s' if len(found) != 1 else ''}): " + "; ".join(found),
                problems=found)


@dataclass(frozen=True, slots=True)
class SchemaUnavailable:
    """No input schema could be had; ``reason`` says why (arguments go unchecked)."""

    endpoint_id: str
    reason: str
    status: int | None = None
    available: bool = False


def find_input(doc: Any, endpoint_id: str) -> tuple[str | None, dict[str, Any]] | str:
    """(component name, schema) of the POST request body, or a reason there is none."""
    if not isinstance(doc, Mapping):
        return "the OpenAPI document is missing"
    err = doc.get("error")
    if isinstance(err, Mapping) and "openapi" not in doc:
        return f"fal.ai could not expand the OpenAPI document ({err.get('message') or err})"
    paths = doc.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        return "the OpenAPI document has no paths"
    posts = [(p, v["post"]) for p, v in paths.items()
             if isinstance(v, Mapping) and isinstance(v.get("post"), Mapping)]
    exact = [op for p, op in posts if str(p).strip("/") == endpoint_id]
    suffix = [op for p, op in posts if str(p).rstrip("/").endswith("/" + endpoint_id)]
    ops = exact or suffix or [op for _, op in posts]
    if not ops:
        return "the OpenAPI document has no POST operation"
    body = C.deref(doc, ops[0].get("requestBody"))
    content = body.get("content") if isinstance(body, Mapping) else None
    if not isinstance(content, Mapping) or not content:
        return "the POST operation has no request body schema"
    media = content.get("application/json") or next(iter(content.values()))
    raw = media.get("schema") if isinstance(media, Mapping) else None
    if not isinstance(raw, Mapping):
        return "the POST operation has no request body schema"
    name = C.ref_name(raw.get("$ref"))
    schema = C.deref(doc, raw)
    if not isinstance(schema, Mapping):
        return f"the request body schema {raw.get('$ref')!r} is not in components"
    return name, dict(schema)


def input_schema_from_openapi(endpoint_id: str, doc: Any) -> InputSchema | SchemaUnavailable:
    """The endpoint's InputSchema from its OpenAPI document (pure)."""
    eid = parse_endpoint_id(endpoint_id).full
    found = find_input(doc, eid)
    if isinstance(found, str):
        return SchemaUnavailable(eid, found)
    name, schema = found
    assert isinstance(doc, Mapping)
    props, required = C.merged_properties(doc, schema)
    fields = []
    for fname, spec in props.items():
        resolved = C.deref(doc, spec) if isinstance(spec, Mapping) else {}
        if not isinstance(resolved, Mapping):
            resolved = {}
        has_default = "default" in spec or "default" in resolved
        fields.append(InputField(
            name=fname, type=C.type_text(doc, spec), required=fname in required,
            enum=C.allowed_values(doc, spec), has_default=has_default,
            default=spec.get("default", resolved.get("default")) if has_default else None,
            media=_is_media(doc, fname, spec),
            description=(spec.get("description") or resolved.get("description") or None)))
    return InputSchema(endpoint_id=eid, name=name, fields=tuple(fields),
                       schema=C.checkable(doc, schema))


def _is_media(doc: Mapping[str, Any], name: str, spec: Any) -> bool:
    if name.endswith(("_url", "_urls")) or name in ("url", "urls"):
        return True
    for sub in C.variants(doc, spec):
        items = C.deref(doc, sub.get("items")) if sub.get("type") == "array" else None
        for s in (sub, items if isinstance(items, Mapping) else {}):
            if s.get("format") in _MEDIA_FORMATS or "contentMediaType" in s:
                return True
    return False


class SchemaCache:
    """Input schemas per endpoint, fetched on demand and reused for ``ttl_s`` seconds.

    A 'no schema' answer is reused for at most UNAVAILABLE_TTL_S, so a network blip does not
    hide the schema for long.
    """

    def __init__(self, client: FalClient, *, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fal = client
        self._ttl = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, InputSchema | SchemaUnavailable]] = {}
        self.fetches = 0
        """How many schema fetches were made (for tests and diagnostics)."""

    def forget(self, endpoint_id: str | None = None) -> None:
        """Drop one endpoint's cached schema, or all of them."""
        if endpoint_id is None:
            self._entries.clear()
        else:
            self._entries.pop(parse_endpoint_id(endpoint_id).full, None)

    async def get(self, endpoint_id: str) -> InputSchema | SchemaUnavailable:
        """The schema (cached), or SchemaUnavailable; InputError for a malformed id."""
        eid = parse_endpoint_id(endpoint_id).full
        now = self._clock()
        hit = self._entries.get(eid)
        if hit is not None and now < hit[0]:
            return hit[1]
        value = await self._fetch(eid)
        ttl = self._ttl if value.available else min(self._ttl, UNAVAILABLE_TTL_S)
        if ttl > 0:
            self._entries[eid] = (self._clock() + ttl, value)
        return value

    async def check(self, endpoint_id: str,
                    arguments: Any) -> InputSchema | SchemaUnavailable:
        """ArgumentsInvalid when the arguments break the schema; else the schema or the
        reason there is none."""
        schema = await self.get(endpoint_id)
        if isinstance(schema, InputSchema):
            schema.validate(arguments)
        return schema

    async def _fetch(self, eid: str) -> InputSchema | SchemaUnavailable:
        self.fetches += 1
        try:
            page = await self._fal.models(endpoint_ids=[eid], expand_openapi=True)
        except E.InputError:
            raise
        except E.NotFoundError as exc:
            return SchemaUnavailable(eid, f"fal.ai does not know endpoint {eid}", exc.status)
        except E.FalError as exc:
            return SchemaUnavailable(eid, f"could not fetch the schema ({type(exc).__name__}: "
                                          f"{exc.message})", exc.status)
        item = next((m for m in page.models if m.endpoint_id == eid), None)
        if item is None:
            return SchemaUnavailable(eid, f"fal.ai lists no endpoint {eid}", 404)
        if item.openapi is None:
            return SchemaUnavailable(eid, "fal.ai sent no OpenAPI document for it")
        return input_schema_from_openapi(eid, item.openapi)


def compact_fields(endpoint_id: str, doc: Any) -> list[dict[str, Any]] | None:
    """The endpoint's input fields in short form, or None when the document has no schema."""
    schema = input_schema_from_openapi(endpoint_id, doc)
    return schema.compact() if isinstance(schema, InputSchema) else None
