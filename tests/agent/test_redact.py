"""Secret redaction: literal env secrets, credential shapes, nesting, purity."""

from __future__ import annotations

import copy

from pydantic import SecretStr

from agent.redact import MASK, Redactor, forget_secrets, redact, redact_text, settings_secrets
from agent.settings import Settings

FAL = "1f2e3d4c-aaaa-bbbb-cccc-0123456789ab:9c8b7a6f5e4d3c2b1a0f"
OPENAI = "sk-test-abcdefghijklmnopqrstuvwxyz0123"


def test_env_secrets_are_masked_everywhere(monkeypatch):
    monkeypatch.setenv("FAL_KEY", FAL)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    text = f"fal={FAL} openai={OPENAI}!"
    out = redact(text)
    assert FAL not in out and OPENAI not in out
    assert out == f"fal={MASK} openai={MASK}!"


def test_secret_half_of_fal_key_alone_is_masked(monkeypatch):
    monkeypatch.setenv("FAL_KEY", FAL)
    secret_half = FAL.split(":", 1)[1]
    out = redact(f"leaked {secret_half} here")
    assert secret_half not in out
    assert out == f"leaked {MASK} here"


def test_nested_structures_are_walked_and_not_mutated(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    data = {
        "messages": [{"role": "user", "content": f"my key is {OPENAI}"}],
        "tuple": ("x", OPENAI),
        "n": 3,
        "ok": True,
        "none": None,
    }
    before = copy.deepcopy(data)
    out = redact(data)
    assert data == before, "input was mutated"
    assert out["messages"][0]["content"] == f"my key is {MASK}"
    assert out["tuple"] == ("x", MASK)
    assert out["n"] == 3 and out["ok"] is True and out["none"] is None


def test_authorization_header_shapes_keep_the_scheme():
    assert redact_text("Authorization: Key abc123:s3cr3tv4lue") == f"Authorization: Key {MASK}"
    assert redact_text("authorization=Bearer eyJhbGciOi.JIUzI1") == f"authorization=Bearer {MASK}"
    assert redact_text("'Authorization': 'Key zz:yy'") == f"'Authorization': 'Key {MASK}'"
    assert redact_text("use Bearer abcdefgh12345678 now") == f"use Bearer {MASK} now"
    assert redact_text("Key deadbeef:cafebabe99 sent") == f"Key {MASK} sent"


def test_openai_style_keys_are_masked_without_being_configured():
    out = redact_text("key sk-proj-AbCdEfGhIjKlMnOpQrStUv123 and sk-AAAAAAAAAAAAAAAAAAAA.")
    assert "sk-proj" not in out and "sk-AAAA" not in out
    assert out == f"key {MASK} and {MASK}."


def test_ordinary_text_survives():
    samples = [
        "key ideas: search then estimate",
        "total_tokens=120, prompt_tokens=100",
        "fal-ai/flux/dev at 12:30:45",
        "a risk-free sk-ip",
        "Bearer of bad news",
    ]
    for s in samples:
        assert redact_text(s) == s


def test_credential_named_keys_lose_their_values():
    out = redact({"headers": {"Authorization": "anything", "X-Fal-Key": "k"}, "api_key": "v",
                  "usage": {"total_tokens": 5}, "key": "fal-ai/flux/dev"})
    assert out["headers"] == {"Authorization": MASK, "X-Fal-Key": MASK}
    assert out["api_key"] == MASK
    assert out["usage"] == {"total_tokens": 5}
    assert out["key"] == "fal-ai/flux/dev"


def test_secretstr_values_are_masked():
    assert redact({"k": SecretStr("abc"), "l": [SecretStr("x")]}) == {"k": MASK, "l": [MASK]}


def test_extra_secrets_from_settings_read_from_dotenv(tmp_path):
    # A key read from .env never reaches os.environ, so callers pass it explicitly.
    (tmp_path / ".env").write_text(f"FAL_KEY={FAL}\n")
    settings = Settings()
    secrets = settings_secrets(settings)
    assert secrets == (FAL,)
    # A bare key has no recognisable shape: the settings remember each key they validate, so
    # every later redaction masks it, not only those handed the settings' secrets.
    assert redact(f"x {FAL}") == f"x {MASK}"
    assert redact(f"x {FAL}", extra=secrets) == f"x {MASK}"
    forget_secrets()
    assert redact(f"x {FAL}") == f"x {FAL}"
    assert redact(f"x {FAL}", extra=secrets) == f"x {MASK}"


def test_short_secrets_do_not_destroy_text(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "ab")
    assert redact("abstract about ab") == "abstract about ab"


def test_regex_metacharacters_in_secrets_are_literal():
    r = Redactor(["a.b*c+(d)"])
    assert r.text("x a.b*c+(d) y aXbbbc") == f"x {MASK} y aXbbbc"


def test_redactors_are_cached_per_secret_set():
    assert Redactor.for_secrets(["one-secret"]) is Redactor.for_secrets(["one-secret"])
    assert Redactor.for_secrets(["one-secret"]) is not Redactor.for_secrets(["two-secret"])
