"""Test-wide setup: no tracing, no real keys, every path in a temp dir."""

from __future__ import annotations

import os
import sys

import pytest

os.environ["LANGSMITH_TRACING"] = "false"
os.environ.pop("LANGCHAIN_TRACING_V2", None)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Each test gets its own data dir and no keys from the developer's shell."""
    for name in ("FAL_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FAL_QUEUE_BASE_URL",
                 "FAL_API_BASE_URL", "FAL_JWKS_URL", "FAL_PERSONA_MODEL", "FAL_PERSONA_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAL_PERSONA_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # so a developer's .env is not read
    from tools.redact import forget_secrets

    forget_secrets()  # keys an earlier test's settings validated are not this test's
    yield
    applog = sys.modules.get("agent.applog")
    if applog is not None:  # a test that ran `main` leaves no log handler on a later test's root
        applog.reset()
