"""Persistent user switches in `<data dir>/config.toml`: a plain dict of sections.

    [transcript]
    enabled = false

    [keys]          # read by the TUI
    quit = "ctrl+q"

    [ui]
    theme = "textual-dark"

Reading uses tomllib; writing uses a tiny serializer for what this file holds (sections of
strings, numbers, booleans and lists of those), written atomically so a crash never leaves
half a file. A broken file raises `UserConfigError` naming the file and line.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from agent import locations

Config = dict[str, dict[str, Any]]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class UserConfigError(ValueError):
    """The config file cannot be read, parsed or written."""


def _path(path: Path | None) -> Path:
    return locations.config_file() if path is None else path


def load(path: Path | None = None) -> Config:
    """The whole config; an empty dict when the file does not exist."""
    path = _path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UserConfigError(f"{path}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise UserConfigError(f"{path}: TOML syntax error: {exc}") from exc
    for section, table in data.items():
        if not isinstance(table, dict):
            raise UserConfigError(f"{path}: {section}: expected a [{section}] table")
    return data


def get(section: str, key: str, default: Any = None, *, path: Path | None = None) -> Any:
    """One value, or `default` when the section or key is absent."""
    return load(path).get(section, {}).get(key, default)


def set_value(section: str, key: str, value: Any, *, path: Path | None = None) -> None:
    """Set one value and save, keeping everything else in the file."""
    data = load(path)
    data.setdefault(section, {})[key] = value
    save(data, path=path)


def save(data: Config, *, path: Path | None = None) -> None:
    """Write the whole config atomically."""
    path = _path(path)
    text = dumps(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserConfigError(f"{path}: cannot write: {exc}") from exc


def dumps(data: Config) -> str:
    """TOML text for a dict of sections of scalar (or list-of-scalar) values."""
    lines: list[str] = []
    for section, table in data.items():
        if not isinstance(table, dict):
            raise UserConfigError(f"section {section!r} must be a table")
        if lines:
            lines.append("")
        lines.append(f"[{_key(section)}]")
        for key, value in table.items():
            lines.append(f"{_key(key)} = {_value(value, f'{section}.{key}')}")
    return "\n".join(lines) + "\n" if lines else ""


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if c.isprintable() or c == " " else f"\\u{ord(c):04x}" for c in out)
    return f'"{out}"'


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UserConfigError(f"{where}: {value} cannot be stored")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v, where) for v in value) + "]"
    raise UserConfigError(f"{where}: cannot store a {type(value).__name__}")


def transcript_enabled(path: Path | None = None) -> bool:
    """The persistent logging switch (`fal-persona logs on|off`); on unless turned off."""
    value = get("transcript", "enabled", True, path=path)
    if not isinstance(value, bool):
        raise UserConfigError(f"{_path(path)}: transcript.enabled: expected true or false")
    return value
