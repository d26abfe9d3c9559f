"""Trigger rules: which webhook events run which action.

A rule lives in a persona file (``[[triggers]]``, acting as that persona) or in the triggers
file (``agent.locations.triggers_file()``, naming its ``persona``)::

    [[triggers]]
    name = "keep-flux-images"
    endpoint = "fal-ai/flux/*"          # glob on the job's endpoint id; default "*"
    status = "OK"                       # OK | ERROR; default: either
    match = [{ path = "payload.images.0.url", exists = true },
             { path = "payload.seed", equals = 42 }]
    tool = "get_queue_result"           # a linked fal tool (optional)
    args = { endpoint_id = "{endpoint_id}", request_id = "{request_id}" }
    save_media = "~/Pictures/fal"       # or true for the data dir's media/ (optional)
    prompt = "Summarise {request_id} and estimate three variations"   # optional
    max_attempts = 5

Paths are dotted into the webhook body (``payload.images.0.url``); integer parts index lists.
A rule naming an endpoint other than ``*`` never matches an event whose endpoint is unknown.
Strings in ``args`` and ``prompt`` may use ``{request_id}``, ``{endpoint_id}``, ``{status}``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent import locations
from tools.errors import AppError
from tools.registry import ALL_TOOLS

_MISSING = object()
ModelT = TypeVar("ModelT", bound=BaseModel)


class RuleError(AppError, ValueError):
    """A trigger rule or schedule is invalid; the message names where and what."""


class Condition(BaseModel):
    """One test on a dotted path: ``equals`` a value, or ``exists`` (true/false)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1)
    equals: Any = None
    exists: bool | None = None

    @property
    def has_equals(self) -> bool:
        """Whether `equals` was given (it may legitimately be null)."""
        return "equals" in self.model_fields_set

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        if not self.has_equals and self.exists is None:
            raise ValueError("a condition needs 'equals' or 'exists'")
        return self

    def holds(self, document: Any) -> bool:
        """Whether the condition is true of `document`."""
        value = lookup(document, self.path)
        if self.exists is not None and (value is not _MISSING) != self.exists:
            return False
        if self.has_equals:
            if value is _MISSING:
                return False
            # TOML `true` must not equal JSON 1, nor 1 equal true.
            if isinstance(value, bool) != isinstance(self.equals, bool):
                return False
            return bool(value == self.equals)
        return True


class Action(BaseModel):
    """What a rule or schedule does: a tool call, saving media, a persona prompt, or several."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    save_media: bool | str = False
    prompt: str | None = Field(default=None, min_length=1)
    approve_spend: bool = False
    """Unattended runs reject spend/destructive tool calls unless this is true."""

    @model_validator(mode="after")
    def _does_something(self) -> Action:
        if self.tool is not None and self.tool not in ALL_TOOLS:
            raise ValueError(f"unknown tool {self.tool!r}")
        if self.tool is None and not self.save_media and self.prompt is None:
            raise ValueError("needs at least one of 'tool', 'save_media', 'prompt'")
        return self


class Rule(Action):
    """A trigger rule: conditions on an event plus the action to take."""

    name: str = Field(min_length=1, max_length=100)
    persona: str | None = None
    endpoint: str = "*"
    status: Literal["OK", "ERROR"] | None = None
    match: list[Condition] = Field(default_factory=list)
    max_attempts: int = Field(default=5, ge=1, le=50)

    def matches(self, event: EventView) -> bool:
        """Whether this rule applies to `event`."""
        if self.status is not None and event.status != self.status:
            return False
        if self.endpoint != "*":
            if event.endpoint_id is None or not fnmatch.fnmatchcase(event.endpoint_id, self.endpoint):
                return False
        return all(cond.holds(event.body) for cond in self.match)


@dataclass(frozen=True)
class EventView:
    """What rules see of an event: its ids, status and parsed body."""

    request_id: str
    status: str
    endpoint_id: str | None
    body: Mapping[str, Any]

    def fields(self) -> dict[str, str]:
        """Template fields for args and prompts."""
        return {
            "request_id": self.request_id,
            "endpoint_id": self.endpoint_id or "",
            "status": self.status,
        }


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted path, or the module's MISSING sentinel."""
    node = document
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.lstrip("-").isdigit():
            index = int(part)
            node = node[index] if -len(node) <= index < len(node) else _MISSING
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def fill(template: Any, fields: Mapping[str, str]) -> Any:
    """Replace {request_id}/{endpoint_id}/{status} in strings, recursively; other braces stay."""
    if isinstance(template, str):
        out = template
        for key, value in fields.items():
            out = out.replace("{" + key + "}", value)
        return out
    if isinstance(template, list):
        return [fill(item, fields) for item in template]
    if isinstance(template, dict):
        return {key: fill(value, fields) for key, value in template.items()}
    return template


def _where(source: str, kind: str, index: int, table: Mapping[str, Any]) -> str:
    name = table.get("name") if isinstance(table, Mapping) else None
    return f"{source}: {kind}[{index}]" + (f" ({name})" if name else "")


def parse_tables(model: type[ModelT], tables: Iterable[Any], *, kind: str, source: str,
                 persona: str | None = None) -> list[ModelT]:
    """Validate raw `[[triggers]]` or `[[schedules]]` tables; RuleError names the bad one.

    A table without a name gets `rule-N` / `schedule-N`; `persona` fills a missing persona.
    """
    stem = "rule" if kind == "triggers" else "schedule"
    out = []
    for index, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise RuleError(f"{source}: {kind}[{index}]: must be a table")
        data = dict(table)
        data.setdefault("name", f"{stem}-{index + 1}")
        if persona is not None:
            data.setdefault("persona", persona)
        try:
            out.append(model.model_validate(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or stem}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            raise RuleError(f"{_where(source, kind, index, data)}: {problems}") from None
    return out


def parse_rules(tables: Iterable[Any], *, source: str, persona: str | None = None) -> list[Rule]:
    """Validate raw `[[triggers]]` tables into rules; RuleError names the bad one."""
    return parse_tables(Rule, tables, kind="triggers", source=source, persona=persona)


def read_triggers_file(path: Path | None = None) -> dict[str, list[Any]]:
    """The raw `triggers` and `schedules` tables of the triggers file (empty if it is absent)."""
    path = path or locations.triggers_file()
    if not path.exists():
        return {"triggers": [], "schedules": []}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: {exc}") from None
    out: dict[str, list[Any]] = {}
    for key in ("triggers", "schedules"):
        value = data.get(key, [])
        if isinstance(value, dict):  # `[triggers.name]` tables
            value = [{"name": k, **v} if isinstance(v, dict) else v for k, v in value.items()]
        if not isinstance(value, list):
            raise RuleError(f"{path}: {key}: must be an array of tables")
        out[key] = value
    return out


def persona_tables() -> list[tuple[str, str, list[Any], list[Any]]]:
    """(persona name, source, triggers, schedules) for every persona that has any."""
    try:
        from agent.personas import load_personas
    except ImportError:  # the persona module is optional for the listener
        return []
    out = []
    for name, persona in load_personas().items():
        triggers = list(getattr(persona, "triggers", []) or [])
        schedules = list(getattr(persona, "schedules", []) or [])
        if triggers or schedules:
            out.append((name, getattr(persona, "source", None) or name, triggers, schedules))
    return out


def load_tables(kind: str, parse: Callable[..., list[Any]], path: Path | None = None, *,
                include_personas: bool = True) -> list[Any]:
    """Every `kind` table ("triggers" or "schedules") parsed with `parse`: the personas' own,
    then the triggers file's."""
    out: list[Any] = []
    if include_personas:
        for name, source, triggers, schedules in persona_tables():
            out.extend(parse(triggers if kind == "triggers" else schedules, source=source, persona=name))
    file_path = path or locations.triggers_file()
    out.extend(parse(read_triggers_file(file_path)[kind], source=str(file_path)))
    return out


def load_rules(path: Path | None = None, *, include_personas: bool = True) -> list[Rule]:
    """Every trigger rule: the personas' own, then the triggers file's."""
    return load_tables("triggers", parse_rules, path, include_personas=include_personas)
