"""Persistent user switches in `<data dir>/config.toml`: a plain dict of sections.

    [transcript]
    enabled = false

    [keys]          # read by the TUI
    quit = "ctrl+q"

    [ui]
    theme = "textual-dark"

Reading uses tomllib; writing edits the file as a `tomlkit` document, so the user's comments,
ordering and formatting survive `fal-persona logs off` and friends. Values are limited to what
this file holds (sections of strings, numbers, booleans and lists of those), and the file is
written atomically so a crash never leaves half of it. A broken file raises `UserConfigError`
naming the file and line.
"""

from __future__ import annotations

import math
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from agent import locations
from tools.errors import AppError

Config = dict[str, dict[str, Any]]


class UserConfigError(AppError, ValueError):
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
    """Set one value and save, keeping everything else in the file, comments included."""
    path = _path(path)
    _check(value, f"{section}.{key}")
    load(path)  # a broken file is reported, never overwritten
    doc = _document(path)
    table = doc.get(section)
    if table is None:
        table = tomlkit.table()
        doc[section] = table
    table[key] = value
    _write(path, tomlkit.dumps(doc))


def save(data: Config, *, path: Path | None = None) -> None:
    """Make the file hold exactly `data`, keeping the comments of entries that stay."""
    path = _path(path)
    _check_config(data)
    try:
        load(path)
        doc = _document(path)
    except UserConfigError:  # unreadable or broken: start a fresh document
        doc = tomlkit.document()
    for section in [s for s in doc if s not in data]:
        del doc[section]
    for section, values in data.items():
        table = doc.get(section)
        if table is None:
            table = tomlkit.table()
            doc[section] = table
        for key in [k for k in table if k not in values]:
            del table[key]
        for key, value in values.items():
            if key not in table or table[key] != value:
                table[key] = value
    _write(path, tomlkit.dumps(doc))


def dumps(data: Config) -> str:
    """TOML text for a dict of sections of scalar (or list-of-scalar) values."""
    _check_config(data)
    return tomlkit.dumps(data)


def _document(path: Path) -> tomlkit.TOMLDocument:
    """The file as an editable document (empty when it does not exist); load() checked it first."""
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise UserConfigError(f"{path}: cannot read: {exc}") from exc


def _write(path: Path, text: str) -> None:
    """Replace the file with `text` in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserConfigError(f"{path}: cannot write: {exc}") from exc


def _check_config(data: Config) -> None:
    for section, table in data.items():
        if not isinstance(table, dict):
            raise UserConfigError(f"section {section!r} must be a table")
        for key, value in table.items():
            _check(value, f"{section}.{key}")


def _check(value: Any, where: str) -> None:
    """Only what this file is meant to hold: scalars and lists of them, finite numbers."""
    if isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UserConfigError(f"{where}: {value} cannot be stored")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check(item, where)
        return
    raise UserConfigError(f"{where}: cannot store a {type(value).__name__}")


def transcript_enabled(path: Path | None = None) -> bool:
    """The persistent logging switch (`fal-persona logs on|off`); on unless turned off."""
    value = get("transcript", "enabled", True, path=path)
    if not isinstance(value, bool):
        raise UserConfigError(f"{_path(path)}: transcript.enabled: expected true or false")
    return value
