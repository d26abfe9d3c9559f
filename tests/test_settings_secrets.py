"""Keys are checked when settings load: stripped, or refused by name without their value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.settings import Settings
from tools.fal.config import FalConfig, settings_error_text

SECRET = "fal-CANARY9:s3cr3tCANARY"
CONTROL = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("FAL_KEY", "OPENAI_API_KEY", "FAL_DEADLINE_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout


@pytest.mark.parametrize("char", ["\n", "\r", "\t", " ", "\r\n"])
@pytest.mark.parametrize("variable", ["FAL_KEY", "OPENAI_API_KEY"])
def test_surrounding_whitespace_is_stripped(monkeypatch, variable, char):
    monkeypatch.setenv(variable, f"{char}{SECRET}{char}")
    settings = Settings()
    value = settings.fal_key if variable == "FAL_KEY" else settings.openai_api_key
    assert value is not None and value.get_secret_value() == SECRET


@pytest.mark.parametrize("char", ["\x1b", "\x7f", "\x01"])
def test_surrounding_control_characters_are_refused(monkeypatch, char):
    monkeypatch.setenv("FAL_KEY", SECRET + char)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "FAL_KEY holds a control character" in settings_error_text(info.value)
    assert "CANARY" not in settings_error_text(info.value)


@pytest.mark.parametrize("char", [c for c in CONTROL if c != "\x00"] + ["é", " "])
@pytest.mark.parametrize("variable", ["FAL_KEY", "OPENAI_API_KEY"])
def test_a_key_with_an_inner_bad_character_is_refused_by_name(monkeypatch, variable, char):
    half = len(SECRET) // 2
    monkeypatch.setenv(variable, SECRET[:half] + char + SECRET[half:])
    with pytest.raises(ValidationError) as info:
        Settings()
    text = settings_error_text(info.value)
    assert variable in text
    for piece in (SECRET[:half], SECRET[half:], "CANARY"):
        assert piece not in text


def test_fal_config_checks_its_key_too(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "fal-CANARY9:ab\ncd")
    with pytest.raises(ValidationError) as info:
        FalConfig()
    assert settings_error_text(info.value).startswith("invalid settings: FAL_KEY holds a control character")
    monkeypatch.setenv("FAL_KEY", "fal-CANARY9:abcd\n")
    assert FalConfig().key.get_secret_value() == "fal-CANARY9:abcd"


def test_a_bad_number_names_its_variable(monkeypatch):
    monkeypatch.setenv("FAL_DEADLINE_S", "soon")
    with pytest.raises(ValidationError) as info:
        FalConfig()
    assert "FAL_DEADLINE_S" in settings_error_text(info.value)


def test_ask_refuses_at_start_and_never_prints_the_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update(FAL_KEY="fal-CANARY9:s3cr\ncr3tCANARY", FAL_PERSONA_HOME=str(tmp_path / "home"))
    binary = Path(sys.executable).parent / "fal-persona"
    out = subprocess.run([str(binary), "ask", "--json", "search flux"], capture_output=True, text=True,
                         env=env, timeout=60, cwd=tmp_path)
    assert out.returncode == 2
    assert "FAL_KEY holds a control character" in out.stderr
    for stream in (out.stdout, out.stderr):
        assert "CANARY" not in stream and "s3cr" not in stream
