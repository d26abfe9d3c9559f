from __future__ import annotations

from agent import locations
from agent.settings import SANDBOX_KEY, Settings


def test_sandbox_when_nothing_set():
    s = Settings()
    assert s.uses_sandbox and s.uses_offline_planner
    cfg = s.fal_config("http://127.0.0.1:9000/")
    assert cfg.queue_base_url == "http://127.0.0.1:9000"
    assert cfg.api_base_url == "http://127.0.0.1:9000/v1"
    assert cfg.jwks_url == "http://127.0.0.1:9000/.well-known/jwks.json"
    assert cfg.key.get_secret_value() == SANDBOX_KEY


def test_key_means_live_and_secret_hidden(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "abc:supersecret")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    s = Settings()
    assert not s.uses_sandbox and not s.uses_offline_planner
    assert "supersecret" not in repr(s) and "supersecret" not in str(s.model_dump())
    assert s.fal_config().queue_base_url == "https://queue.fal.run"


def test_dotenv_is_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("FAL_PERSONA_PERSONA=analyst\n")
    assert Settings().persona == "analyst"


def test_home_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FAL_PERSONA_HOME", str(tmp_path / "elsewhere"))
    assert locations.transcript_db().parent == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere").is_dir()
