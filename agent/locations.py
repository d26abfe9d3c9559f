"""Every path the application uses, from one place.

The data dir is `Settings.home` (``FAL_PERSONA_HOME``, from the environment or `.env`), else
the platform's user data dir. The command line resolves the settings once at start-up and
calls :func:`use_settings`, which fixes the data dir for this process and every child it
starts (the checker process, the web command's apps) by exporting it as
``FAL_PERSONA_HOME``. Code running without the command line (tests, a library user) gets the
same answer: :func:`home` reads the settings itself when nothing was exported.

Files shipped with the product are package data, read through `importlib.resources`, so an
installed wheel finds them from any directory.
"""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from agent.settings import Settings

APP_NAME = "fal-persona"
HOME_VAR = "FAL_PERSONA_HOME"


def resolve_home(value: str | None) -> Path:
    """The data dir a `Settings.home` value names (absolute), or the platform's default."""
    if value and value.strip():
        return Path(value.strip()).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def use_settings(settings: Settings) -> Path:
    """Fix the data dir for this process (and its children) from resolved settings."""
    path = resolve_home(settings.home)
    os.environ[HOME_VAR] = str(path)
    return path


def _settings_home() -> str | None:
    """`FAL_PERSONA_HOME` as the settings see it: the environment wins, else `.env`."""
    exported = os.environ.get(HOME_VAR)
    if exported and exported.strip():
        return exported
    from pydantic import ValidationError

    from agent.settings import Settings

    try:
        return Settings().home
    except ValidationError:  # an unrelated bad variable: the command line reports it; fall back
        return None


def home() -> Path:
    """The data dir (see the module docstring). Created on use."""
    path = resolve_home(_settings_home())
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


def shipped_personas_dir() -> Traversable:
    """Persona files shipped with the product: the `prompts` package's data."""
    return resources.files("prompts")


def triggers_file() -> Path:
    """Trigger rules and schedules (TOML)."""
    return home() / "triggers.toml"


def media_dir() -> Path:
    """Default folder for saved media."""
    path = home() / "media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file() -> Path:
    """The application's rotating log (see agent/applog.py)."""
    path = home() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path / "fal-persona.log"


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
