"""The application log: a rotating file in the data dir at the chosen level, stderr by command,
secrets masked by the logging filter."""

from __future__ import annotations

import logging
import logging.handlers
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import applog, locations
from agent.cli import main
from agent.redact import MASK

KEY = "k3y-id-0451:s3cret-value-abcdef0123456789"
BIN = Path(sys.executable).parent / "fal-persona"


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_fal_persona_handler", False)]


def test_the_file_is_in_the_data_dir_rotating_at_the_default_level(capsys):
    assert main(["logs", "list"]) == 0
    path = locations.home() / "logs" / "fal-persona.log"
    assert locations.log_file() == path
    (rotating,) = [h for h in ours() if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert Path(rotating.baseFilename) == path
    assert (rotating.maxBytes, rotating.backupCount, rotating.level) == (5 * 1024 * 1024, 3, logging.INFO)
    text = path.read_text()
    assert " INFO " in text and "fal-persona logs list started" in text
    logging.getLogger("agent.somewhere").debug("not at INFO")
    rotating.flush()
    assert "not at INFO" not in path.read_text()


def test_log_level_flag_debug(capsys):
    assert main(["--log-level", "debug", "logs", "list"]) == 0
    logging.getLogger("agent.somewhere").debug("a debug line")
    text = locations.log_file().read_text()
    assert "DEBUG   " in text and "a debug line" in text
    assert main(["logs", "--log-level", "ERROR", "list"]) == 0  # after the subcommand too
    assert {h.level for h in ours()} == {logging.ERROR}


def test_level_from_the_environment_and_bad_levels(monkeypatch, capsys):
    monkeypatch.setenv("FAL_PERSONA_LOG_LEVEL", "warning")
    assert main(["logs", "list"]) == 0
    assert {h.level for h in ours()} == {logging.WARNING}
    assert main(["--log-level", "INFO", "logs", "list"]) == 0  # the flag wins
    assert {h.level for h in ours() if isinstance(h, logging.FileHandler)} == {logging.INFO}
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["--log-level", "LOUD", "logs", "list"])
    assert stop.value.code == 2 and "not a log level: 'LOUD'" in capsys.readouterr().err
    monkeypatch.setenv("FAL_PERSONA_LOG_LEVEL", "LOUD")
    assert main(["logs", "list"]) == 2
    err = capsys.readouterr().err
    assert "FAL_PERSONA_LOG_LEVEL" in err and err.count("\n") == 1


def test_secrets_are_masked_in_the_file(monkeypatch):
    monkeypatch.setenv("FAL_KEY", KEY)
    path = applog.configure("DEBUG", console="none")
    assert path is not None
    log = logging.getLogger("agent.test")
    log.warning("calling with key %s", KEY)
    log.info("header Authorization: Key %s", KEY)
    try:
        raise RuntimeError(f"server said: bad key {KEY}")
    except RuntimeError:
        log.exception("request failed")
    log.error("in a dict: %s", {"api_key": KEY})
    for handler in ours():
        handler.flush()
    text = path.read_text()
    assert KEY not in text and "s3cret-value-abcdef0123456789" not in text
    assert text.count(MASK) >= 4 and "RuntimeError: server said: bad key" in text


def test_a_key_only_in_dotenv_is_masked_too(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"FAL_KEY={KEY}\n")
    monkeypatch.setenv("FAL_PERSONA_LOG_LEVEL", "DEBUG")
    assert main(["logs", "list"]) == 0  # the settings read the key from .env: it is remembered
    assert KEY not in os.environ.get("FAL_KEY", "")
    logging.getLogger("agent.test").info("the key was %s", KEY)
    text = locations.log_file().read_text()
    assert KEY not in text and f"the key was {MASK}" in text


def test_stderr_gets_warnings_for_commands_and_nothing_for_the_tui(capsys):
    applog.configure("DEBUG", console="warnings")
    log = logging.getLogger("agent.test")
    log.info("quiet info")
    log.warning("loud warning")
    err = capsys.readouterr().err
    assert "loud warning" in err and "quiet info" not in err
    applog.configure("INFO", console="level")  # servers
    log.info("server info")
    assert "server info" in capsys.readouterr().err
    applog.configure("INFO", console="none")  # the TUI: Textual owns the terminal
    log.error("only in the file")
    assert capsys.readouterr().err == ""
    assert "only in the file" in locations.log_file().read_text()


def test_an_unwritable_data_dir_does_not_stop_a_command(tmp_path, capsys):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the logs folder would go")
    assert applog.configure("INFO", console="warnings", path=blocked / "fal-persona.log") is None
    assert "cannot write the log file" in capsys.readouterr().err
    applog.configure("INFO", console="none", path=blocked / "x.log")
    logging.getLogger("agent.test").error("goes nowhere")  # and not to logging's last resort
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not BIN.exists(), reason=f"{BIN} is not installed (pip install -e .)")
def test_installed_command_with_debug_writes_the_file(tmp_path):
    home = tmp_path / "h"
    env = {**os.environ, "FAL_PERSONA_HOME": str(home), "FAL_KEY": KEY, "FAL_QUEUE_BASE_URL": "http://127.0.0.1:9"}
    done = subprocess.run([str(BIN), "--log-level", "DEBUG", "ask", "--no-listen", "status fal-ai/flux/dev 123"],
                          env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode != 0  # nothing listens on port 9
    text = (home / "logs" / "fal-persona.log").read_text()
    assert "DEBUG" in text and "fal-persona ask started" in text
    assert KEY not in text and KEY not in done.stderr
