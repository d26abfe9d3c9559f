"""Personas: a system prompt plus the tools it may use, loaded from TOML files.

Shipped personas live in `prompts/` (package data, read through importlib.resources); the
user's own in `<data dir>/personas/`, where a file defines (or overrides, by name) one
persona. A file looks like::

    name = "analyst"                 # optional; defaults to the file name
    description = "Read-only research"
    budget_usd = 0.5                 # cap per session, > 0
    model = "gpt-4o-mini"            # optional
    tools = ["search_models", "get_pricing"]   # or ["*"] for all nine, ["*", "upload_file"]
    approval = []                    # optional; default: its spend/destructive/upload tools
    system_prompt = '''...'''

    [[mcp_servers]]                  # optional: MCP servers whose tools it may use
                                     # (agent.mcp.config describes the fields)
    [[triggers]]                     # optional, read by the trigger engine
    [[schedules]]                    # optional, read by the trigger engine

Any mistake raises `PersonaError` naming the file and the field, e.g.
`prompts/analyst.toml: budget_usd: Input should be greater than 0`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from importlib.resources.abc import Traversable
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent import locations
from agent.mcp.config import McpServerSpec, unique_names
from tools.errors import AppError
from tools.registry import ALL_TOOLS, DEFAULT_TOOLS, GUARDED_TOOLS

_NAME_RE = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class PersonaError(AppError, ValueError):
    """A persona file is missing, unreadable or invalid; the message names file and field."""


def _check_tool_names(names: list[str]) -> list[str]:
    """Expand `"*"` to the default tools (an optional one such as upload_file is named beside
    it), reject unknown names, keep the canonical order."""
    if "*" in names:
        names = [*DEFAULT_TOOLS, *(n for n in names if n != "*")]
    unknown = [n for n in names if n not in ALL_TOOLS]
    if unknown:
        raise ValueError(
            f"unknown tool {', '.join(map(repr, unknown))} (known: {', '.join(ALL_TOOLS)})"
        )
    return [n for n in ALL_TOOLS if n in names]


def _table_list(value: Any) -> Any:
    """Accept `[[triggers]]` (a list) or `[triggers.name]` (named tables) as a list of dicts."""
    if isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
        return [{"name": k, **v} for k, v in value.items()]
    return value


class Persona(BaseModel):
    """One persona: who the agent is, what it may call, and what needs a human's yes.

    `tools` are its scopes (the runner refuses anything else); `approval` lists the tools that
    must be approved before they run; `budget_usd` caps what one session may spend. `triggers`
    and `schedules` are kept as raw tables: the trigger engine validates them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME_RE)
    description: str = ""
    system_prompt: str = Field(min_length=1)
    tools: list[str] = Field(min_length=1)
    approval: list[str] | None = None
    budget_usd: float = Field(gt=0, allow_inf_nan=False)
    model: str | None = None
    mcp_servers: list[McpServerSpec] = Field(default_factory=list)
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    schedules: list[dict[str, Any]] = Field(default_factory=list)
    source: str | None = Field(default=None, exclude=True)
    """The file this persona came from (for messages); not part of the file format."""

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str]) -> list[str]:
        return _check_tool_names(value)

    @field_validator("approval")
    @classmethod
    def _approval_names(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_tool_names(value)

    @field_validator("mcp_servers")
    @classmethod
    def _server_names(cls, value: list[McpServerSpec]) -> list[McpServerSpec]:
        return unique_names(value)

    @field_validator("triggers", "schedules", mode="before")
    @classmethod
    def _tables(cls, value: Any) -> Any:
        return _table_list(value)

    @field_validator("system_prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip() + "\n"

    @model_validator(mode="after")
    def _approval_within_tools(self) -> Persona:
        if self.approval is None:
            # Safe default: whatever can spend or destroy asks first.
            object.__setattr__(self, "approval", [t for t in self.tools if t in GUARDED_TOOLS])
        stray = [t for t in self.approval or [] if t not in self.tools]
        if stray:
            raise ValueError(f"approval: {', '.join(stray)} not in this persona's tools")
        return self

    def allows(self, tool: str) -> bool:
        """Whether this persona may call `tool` at all."""
        return tool in self.tools

    def needs_approval(self, tool: str) -> bool:
        """Whether calling `tool` needs a human's decision first."""
        return tool in (self.approval or [])


def _display(path: Traversable) -> str:
    """A short, recognisable name for a persona file in messages."""
    if not isinstance(path, Path):  # shipped data read from a zip or other non-file location
        return f"prompts/{path.name}"
    shipped = locations.shipped_personas_dir()
    roots = [Path(str(shipped)).parent] if isinstance(shipped, Path) else []
    for root in (*roots, Path.cwd()):
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            continue
    return str(path)


def _field_of(loc: tuple[Any, ...]) -> str:
    """`("tools", 2)` -> `tools[2]`; `("triggers", 0, "when")` -> `triggers[0].when`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _validation_message(where: str, exc: ValidationError) -> str:
    """One line per problem, each naming the field."""
    parts = []
    for err in exc.errors(include_url=False):
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(msg if msg.startswith("approval: ") else f"{_field_of(err['loc'])}: {msg}")
    return f"{where}: " + "; ".join(parts)


def load_persona_file(path: Traversable) -> Persona:
    """Read and validate one persona file (a path, or a shipped file in the package data)."""
    where = _display(path)
    try:
        raw = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise PersonaError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PersonaError(f"{where}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        lineno = found.group(1) if found else None
        if lineno is None and "(at end of document)" in str(exc):
            lineno = str(max(1, raw.count("\n") + (0 if raw.endswith("\n") else 1)))
        detail = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        line = f"line {lineno}: " if lineno else ""
        raise PersonaError(f"{where}: {line}TOML syntax error: {detail}") from exc
    stem = PurePath(path.name).stem
    name = data.setdefault("name", stem)
    if isinstance(name, str) and name != stem:
        raise PersonaError(f"{where}: name: {name!r} must match the file name {stem!r}")
    try:
        return Persona.model_validate({**data, "source": where})
    except ValidationError as exc:
        raise PersonaError(_validation_message(where, exc)) from exc


def default_dirs() -> list[Traversable]:
    """Shipped personas first, then the user's, so the user's win."""
    return [locations.shipped_personas_dir(), locations.user_personas_dir()]


def load_personas(dirs: Iterable[Traversable] | None = None) -> dict[str, Persona]:
    """Every persona, by name; later directories override earlier ones of the same name."""
    personas: dict[str, Persona] = {}
    for folder in default_dirs() if dirs is None else dirs:
        if not folder.is_dir():
            continue
        files = (f for f in folder.iterdir() if f.name.endswith(".toml") and f.is_file())
        for path in sorted(files, key=lambda f: f.name):
            persona = load_persona_file(path)
            personas[persona.name] = persona
    return personas


def get_persona(name: str, personas: dict[str, Persona] | None = None) -> Persona:
    """One persona by name, or a PersonaError listing the known ones."""
    personas = load_personas() if personas is None else personas
    try:
        return personas[name]
    except KeyError:
        known = ", ".join(sorted(personas)) or "none"
        raise PersonaError(f"unknown persona {name!r} (known: {known})") from None
