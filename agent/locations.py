"""Every path the application uses, from one place.

``FAL_PERSONA_HOME`` relocates all of it (tests point it at a temp dir); otherwise the
platform's user data dir is used.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "fal-persona"
REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """The data dir: `$FAL_PERSONA_HOME`, else the platform's user data dir. Created on use."""
    env = os.environ.get("FAL_PERSONA_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def transcript_db() -> Path:
    """SQLite transcript (WAL mode)."""
    return home() / "transcript.sqlite3"


def inbox_db() -> Path:
    """SQLite webhook inbox."""
    return home() / "inbox.sqlite3"


def user_personas_dir() -> Path:
    """Persona files the user adds; they override shipped ones of the same name."""
    path = home() / "personas"
    path.mkdir(parents=True, exist_ok=True)
    return path


def shipped_personas_dir() -> Path:
    """Persona files shipped with the product (`prompts/`)."""
    return REPO_ROOT / "prompts"


def triggers_file() -> Path:
    """Trigger rules and schedules (TOML)."""
    return home() / "triggers.toml"


def media_dir() -> Path:
    """Default folder for saved media."""
    path = home() / "media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tls_dir() -> Path:
    """Where the sandbox writes its self-signed certificate."""
    path = home() / "tls"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_file() -> Path:
    """Persistent user switches (TOML): logging on/off, key bindings, theme."""
    return home() / "config.toml"


def input_history() -> Path:
    """The TUI's input history, one entry a line."""
    return home() / "history.txt"
