"""Helpers for the trigger tests: signing keys, fal-shaped bodies, a JWKS served in-process, a clock."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from typing import Any

import httpx
from nacl.signing import SigningKey

from tools.webhooks import JwksCache, signed_message


class Signer:
    """An Ed25519 key that signs webhooks the way fal does (shared/fal-api.md §4.4)."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()

    @property
    def jwk(self) -> dict[str, str]:
        raw = bytes(self.key.verify_key)
        return {"kty": "OKP", "crv": "Ed25519",
                "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}

    def headers(self, body: bytes, request_id: str, *, user_id: str = "user-1",
                timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = self.key.sign(signed_message(request_id, user_id, ts, body)).signature.hex()
        return {"X-Fal-Webhook-Request-Id": request_id, "X-Fal-Webhook-User-Id": user_id,
                "X-Fal-Webhook-Timestamp": ts, "X-Fal-Webhook-Signature": sig}


def fal_body(request_id: str, *, status: str = "OK", payload: Any = None, **extra: Any) -> bytes:
    """A body shaped like fal's: sorted keys, json.dumps default separators."""
    if payload is None and status == "OK" and "payload_error" not in extra:
        payload = {"images": [{"url": "https://media.example/a.png", "content_type": "image/png"}],
                   "seed": 42}
    doc = {"error": None if status == "OK" else "Invalid status code: 422",
           "gateway_request_id": request_id, "payload": payload, "request_id": request_id,
           "status": status, **extra}
    return json.dumps(doc, sort_keys=True).encode()


def failing_inserts(path: Any, on: bool) -> None:
    """A storage failure every process sees: a trigger that aborts each insert into events."""
    with sqlite3.connect(path) as db:
        if on:
            db.execute("CREATE TRIGGER IF NOT EXISTS test_disk_full BEFORE INSERT ON events "
                       "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        else:
            db.execute("DROP TRIGGER IF EXISTS test_disk_full")


class JwksServer:
    """A JWKS behind httpx.MockTransport whose keys tests can rotate; counts fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.keys = [s.jwk for s in signers]
        self.fetches = 0
        self.fail = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.fail:
            return httpx.Response(500, json={"error": "down"})
        return httpx.Response(200, json={"keys": list(self.keys)})

    def cache(self, **kwargs: Any) -> JwksCache:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return JwksCache("https://jwks.test/.well-known/jwks.json", client=client, **kwargs)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class JwksHttpServer:
    """A loopback HTTP server (in a thread) publishing a JWKS, for out-of-process listeners."""

    def __init__(self, *signers: Signer) -> None:
        import http.server
        import threading

        document = json.dumps({"keys": [s.jwk for s in signers]}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_listener_process(env: dict[str, str], *, timeout_s: float = 30.0, workers: int = 1):
    """Run `fal-persona webhooks serve --port 0` as a subprocess; returns (process, base URL).

    The process leads its own session, so ``os.killpg(proc.pid, ...)`` reaches every worker.
    """
    import re
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main(sys.argv[1:]))",
         "webhooks", "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.match(r"Listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise RuntimeError(f"listener did not start: {proc.stderr.read()[-2000:]}")
