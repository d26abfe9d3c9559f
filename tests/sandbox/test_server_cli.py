"""Running the sandbox: start_in_thread, the background ticker, and `fal-persona sandbox`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread


def test_start_in_thread_reports_real_port_and_stops():
    with start_in_thread() as sb:
        port = int(sb.url.rsplit(":", 1)[1])
        assert port > 0
        r = httpx.get(f"{sb.url}/.well-known/jwks.json")
        assert r.status_code == 200 and r.json()["keys"]
        assert sb.app.state.sandbox is sb.state
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{sb.url}/.well-known/jwks.json", timeout=2)


async def test_ticker_delivers_webhooks_without_requests():
    got = []
    transport = httpx.MockTransport(lambda req: got.append(req) or httpx.Response(200))
    app = create_app(SandboxConfig(manual_clock=True, webhook_transport=transport))
    state = app.state.sandbox
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        r = await c.post("/fal-ai/flux/schnell", params={"fal_webhook": "http://r/h"}, json={"prompt": "x"})
        assert r.status_code == 200
    state.clock.advance(5)  # a bare clock move: only the background ticker can notice it
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(got) == 1 and got[0].headers["x-fal-webhook-request-id"] == r.json()["request_id"]
    await state.aclose()


def _start_cli(args, env):
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "sandbox", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Any key"):
            break
    return proc, lines


def test_cli_prints_url_and_env_vars():
    proc, lines = _start_cli([], dict(os.environ))
    try:
        url = lines[0].rsplit(" ", 1)[1]
        assert url.startswith("http://127.0.0.1:")
        assert f"  FAL_QUEUE_BASE_URL={url}" in lines and f"  FAL_API_BASE_URL={url}/v1" in lines
        assert f"  FAL_JWKS_URL={url}/.well-known/jwks.json" in lines
        assert httpx.get(f"{url}/v1/models", params={"limit": 1}).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


def test_cli_tls_writes_cert_into_data_dir(tmp_path):
    env = dict(os.environ, FAL_PERSONA_HOME=str(tmp_path / "home"))
    proc, lines = _start_cli(["--tls", "--seed", "11" * 32, "--locked-key", "bad"], env)
    try:
        cert = [ln.split("=", 1)[1] for ln in lines if ln.startswith("  SSL_CERT_FILE=")][0]
        assert cert.startswith(str(tmp_path / "home" / "tls")) and os.path.exists(cert)
        url = lines[0].rsplit(" ", 1)[1]
        assert url.startswith("https://")
        host = [ln.split("=", 1)[1] for ln in lines if ln.startswith("  FAL_QUEUE_RUN_HOST=")][0]
        assert url.endswith(host)
        r = httpx.post(f"{url}/fal-ai/flux/dev", json={"prompt": "x"}, headers={"Authorization": "Key bad:s"},
                       verify=cert)
        assert r.status_code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


def test_cli_rejects_bad_seed():
    # Through main() as the console script runs it (under -m, CliError would be __main__.CliError).
    code = "import sys; from agent.cli import main; sys.exit(main(['sandbox', '--seed', 'xyz']))"
    proc = subprocess.run([sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--seed" in proc.stderr
