"""Issue 12.11 and Done-when: the official fal_client's run, submit, status, iter_events, result,
cancel and subscribe all work unchanged against `fal-persona sandbox --tls`, configured only
from the lines its start banner prints (FAL_QUEUE_RUN_HOST, FAL_RUN_HOST, SSL_CERT_FILE)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = r"""
import json, time
import fal_client

out = {}
ep = "fal-ai/flux/schnell"
out["run"] = fal_client.run(ep, arguments={"prompt": "one run", "seed": 3})
handle = fal_client.submit(ep, arguments={"prompt": "one submit"})
out["status"] = type(fal_client.status(ep, handle.request_id)).__name__
out["events"] = [type(e).__name__ for e in handle.iter_events(with_logs=True, interval=0.02)]
out["result"] = fal_client.result(ep, handle.request_id)
out["subscribe"] = fal_client.subscribe(ep, arguments={"prompt": "one subscribe"}, with_logs=True)
slow = fal_client.submit("fal-ai/flux/dev", arguments={"prompt": "to cancel", "num_inference_steps": 50})
fal_client.cancel("fal-ai/flux/dev", slow.request_id)
final = None
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    final = fal_client.status("fal-ai/flux/dev", slow.request_id)
    if isinstance(final, fal_client.Completed):
        break
    time.sleep(0.02)
out["cancelled"] = type(final).__name__
try:
    fal_client.result("fal-ai/flux/dev", slow.request_id)
    out["cancelled_result"] = "no error"
except fal_client.client.FalClientHTTPError as exc:
    out["cancelled_result"] = exc.status_code
print(json.dumps(out))
"""


def _start(home: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    env = dict(os.environ, FAL_PERSONA_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "sandbox", "--tls", "--port", "0",
                             "--speed", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    banner: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line or line.startswith("Any key"):
            break
        if line.startswith("  ") and "=" in line:
            name, value = line.strip().split("=", 1)
            banner[name] = value
    return proc, banner


def test_every_official_client_call_against_sandbox_tls(tmp_path):
    proc, banner = _start(tmp_path / "home")
    try:
        assert {"FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "SSL_CERT_FILE"} <= set(banner), banner
        assert banner["FAL_RUN_HOST"] == banner["FAL_QUEUE_RUN_HOST"] + "/_run"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
        env.update({k: banner[k] for k in ("FAL_QUEUE_RUN_HOST", "FAL_RUN_HOST", "SSL_CERT_FILE")},
                   FAL_KEY="client-id:client-secret")
        run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["run"]["seed"] == 3 and out["run"]["images"], out["run"]  # the output, not IN_QUEUE
    assert out["status"] in ("Queued", "InProgress", "Completed")
    assert out["events"] and out["events"][-1] == "Completed"
    assert out["result"]["prompt"] == "one submit" and out["result"]["images"]
    assert out["subscribe"]["prompt"] == "one subscribe" and out["subscribe"]["images"]
    assert out["cancelled"] == "Completed"
    assert out["cancelled_result"] in (400, "no error")  # cancelled (fal answers 400), or done first
