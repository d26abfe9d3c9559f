"""`fal-persona webhooks serve|list` and `schedules list` as a person runs them: real processes,
a real sandbox signing the webhook, the files a user would write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from agent import locations
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread as start_sandbox

ENDPOINT = "fal-ai/flux/schnell"
KEY = {"Authorization": "Key sandbox-key:sandbox-secret"}
EXE = shutil.which("fal-persona", path=os.path.dirname(sys.executable))

pytestmark = pytest.mark.skipif(EXE is None, reason="the fal-persona console script is not installed")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=60)


def serve(env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    """Start `fal-persona webhooks serve --port 0`; return it and the lines it printed up to its rules."""
    proc = subprocess.Popen([EXE, "webhooks", "serve", "--host", "127.0.0.1", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    for line in proc.stdout:  # type: ignore[union-attr]  # stdout=PIPE
        lines.append(line.rstrip("\n"))
        if line.startswith("Rules:"):
            return proc, lines
    proc.kill()
    raise AssertionError(f"serve did not start: {lines} {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]  # stderr=PIPE


def test_serve_verifies_a_sandbox_webhook_and_list_shows_it(tmp_path):
    media = tmp_path / "saved"
    locations.triggers_file().parent.mkdir(parents=True, exist_ok=True)
    locations.triggers_file().write_text(f"""
[[triggers]]
name = "keep-images"
endpoint = "fal-ai/flux/*"
status = "OK"
tool = "get_queue_result"
save_media = "{media}"
""")
    with start_sandbox(config=SandboxConfig(manual_clock=True)) as sandbox:
        # The listener's rules talk to the sandbox, and its JWKS is the sandbox's.
        env = {**os.environ, "FAL_QUEUE_BASE_URL": sandbox.url, "FAL_API_BASE_URL": f"{sandbox.url}/v1",
               "FAL_JWKS_URL": f"{sandbox.url}/.well-known/jwks.json", "FAL_KEY": "sandbox-key:sandbox-secret",
               "FAL_PERSONA_NO_LOG": "1"}
        proc, lines = serve(env)
        try:
            base = next(line.split()[-1] for line in lines if line.startswith("Listening on "))
            hook = next(line.split()[-1] for line in lines if line.startswith("Webhook URL to give fal: "))
            assert hook == f"{base}/webhooks/fal"
            assert f"JWKS: {sandbox.url}/.well-known/jwks.json" in lines
            assert "Rules: 1; schedules: 0" in lines
            assert httpx.get(f"{base}/healthz").json()["ok"] is True

            submitted = httpx.post(f"{sandbox.url}/{ENDPOINT}", headers=KEY, json={"prompt": "a fox"},
                                   params={"fal_webhook": f"{hook}?endpoint_id={ENDPOINT}"})
            request_id = submitted.json()["request_id"]
            deadline = time.monotonic() + 60
            row = None
            while row is None or row["state"] != "done":
                assert time.monotonic() < deadline, f"never settled: {row}"
                sandbox.advance(5)  # returns once the delivery attempts it set off have finished
                listed = cli("webhooks", "list", "--json", env=env)
                assert listed.returncode == 0, listed.stderr
                row = next((r for r in json.loads(listed.stdout) if r["request_id"] == request_id), None)
                assert row is None or row["state"] in ("pending", "done"), row
                time.sleep(0.1)
            assert row["status"] == "OK" and row["endpoint_id"] == ENDPOINT and row["attempts"] == 1
            assert "keep-images: get_queue_result ok; saved 1 file(s)" in row["outcome"]
            assert [p.read_bytes()[:4] for p in media.iterdir()] == [b"\x89PNG"]

            # A forged delivery is refused and never listed. Its timestamp is older than the
            # listener's keys (fetched for the delivery above), so it cannot be a new key: 401.
            forged = httpx.post(hook, content=b'{"request_id":"x","status":"OK","payload":{}}',
                                headers={"X-Fal-Webhook-Request-Id": "x", "X-Fal-Webhook-User-Id": "u",
                                         "X-Fal-Webhook-Timestamp": str(int(time.time()) - 250),
                                         "X-Fal-Webhook-Signature": "00" * 64})
            assert forged.status_code == 401 and forged.json() == {"error": "bad_signature"}
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    text = cli("webhooks", "list", env=env)
    assert text.returncode == 0 and request_id in text.stdout and "done" in text.stdout
    assert '"x"' not in cli("webhooks", "list", "--json", env=env).stdout


def test_schedules_list_shows_persona_and_triggers_file_schedules(tmp_path):
    personas = locations.user_personas_dir()
    personas.mkdir(parents=True, exist_ok=True)
    (personas / "watcher.toml").write_text('''
description = "Watches prices"
budget_usd = 1.0
tools = ["get_pricing"]
system_prompt = "You watch prices."

[[schedules]]
name = "morning-prices"
cron = "0 9 * * mon-fri"
timezone = "Europe/Paris"
prompt = "price fal-ai/flux/dev"
''')
    locations.triggers_file().write_text('''
[[schedules]]
name = "hourly-jwks"
cron = "5 * * * *"
tool = "get_pricing"
args = { endpoint_ids = ["fal-ai/flux/dev"] }
''')
    env = dict(os.environ)
    listed = cli("schedules", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"morning-prices", "hourly-jwks"}
    morning = rows["morning-prices"]
    assert morning["persona"] == "watcher" and morning["timezone"] == "Europe/Paris"
    assert morning["action"] == "prompt" and morning["next_run_epoch"] > time.time()
    hourly = rows["hourly-jwks"]
    assert hourly["action"] == "tool" and hourly["tool"] == "get_pricing"
    # "5 * * * *": the next run is at minute 5 of an hour, within the coming hour.
    assert time.gmtime(hourly["next_run_epoch"]).tm_min == 5
    assert 0 < hourly["next_run_epoch"] - time.time() <= 3600
    text = cli("schedules", "list", env=env)
    assert text.returncode == 0
    assert "morning-prices" in text.stdout and "0 9 * * mon-fri" in text.stdout and "watcher" in text.stdout
    assert "hourly-jwks" in text.stdout and "next " in text.stdout
