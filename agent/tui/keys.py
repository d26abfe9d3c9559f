"""Key bindings: the defaults and the user's `[keys]` overrides from the config file."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# binding id -> default keys (comma-separated alternatives, Textual's keymap format)
DEFAULT_KEYS: dict[str, str] = {
    "send": "enter",
    "newline": "ctrl+j",
    "cancel": "escape",
    "clear": "ctrl+l",
    "persona": "ctrl+o",
    "transcript": "ctrl+t",
    "jobs": "ctrl+b",
    "export": "ctrl+s",
    "resume": "ctrl+r",
    "history_prev": "up",
    "history_next": "down",
}


def _read_keys_section(path: Path, use_userconfig: bool) -> dict[str, object]:
    """The `[keys]` table: via agent.userconfig when present, else tomllib directly."""
    getter = None
    try:
        from agent import userconfig

        if use_userconfig:
            getter = getattr(userconfig, "get", None)
    except ImportError:
        pass
    if getter is not None:
        try:
            table = {k: getter("keys", k, None) for k in DEFAULT_KEYS}
            return {k: v for k, v in table.items() if v is not None}
        except Exception as exc:  # a broken config must not stop the app; fall through to tomllib
            log.warning("key bindings: %s", exc)
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        log.warning("key bindings: cannot read %s (defaults used): %s", path, exc)
        return {}
    section = data.get("keys")
    return section if isinstance(section, dict) else {}


def load_keys(path: Path | None = None) -> dict[str, str]:
    """Defaults overlaid with valid user overrides (strings, or lists of strings)."""
    use_userconfig = path is None
    if path is None:
        from agent.locations import config_file

        path = config_file()
    keys = dict(DEFAULT_KEYS)
    for name, value in _read_keys_section(path, use_userconfig).items():
        if name not in DEFAULT_KEYS:
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
            keys[name] = ",".join(value)
        elif isinstance(value, str) and value.strip():
            keys[name] = value.strip()
    return keys


def key_set(spec: str) -> frozenset[str]:
    """The keys in a comma-separated spec."""
    return frozenset(k.strip() for k in spec.split(",") if k.strip())
