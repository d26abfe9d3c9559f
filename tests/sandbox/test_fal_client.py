"""The official Python fal_client works unchanged against the sandbox in --tls mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread

SCRIPT = r"""
import json, time
import fal_client  # reads FAL_QUEUE_RUN_HOST at import time

handle = fal_client.submit("fal-ai/flux/dev", arguments={"prompt": "a lighthouse", "seed": 7})
kinds = []
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    status = fal_client.status("fal-ai/flux/dev", handle.request_id, with_logs=True)
    kinds.append(type(status).__name__)
    if isinstance(status, fal_client.Completed):
        break
    time.sleep(0.02)
result = fal_client.result("fal-ai/flux/dev", handle.request_id)
try:
    fal_client.cancel("fal-ai/flux/dev", handle.request_id)
    cancel = "no error"
except fal_client.client.FalClientHTTPError as exc:
    cancel = exc.status_code
print(json.dumps({"request_id": handle.request_id, "kinds": kinds, "result": result, "cancel": cancel,
                  "logs": len(status.logs or [])}))
"""


def test_official_fal_client_submit_status_result(tmp_path):
    config = SandboxConfig(speed=40.0, data_dir=tmp_path / "tls")
    with start_in_thread(config=config, tls=True) as sb:
        assert sb.url.startswith("https://127.0.0.1:") and sb.cert_path is not None
        host = sb.url.split("://", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
        env.update(FAL_QUEUE_RUN_HOST=host, FAL_RUN_HOST=host, SSL_CERT_FILE=str(sb.cert_path),
                   FAL_KEY="sandbox-id:sandbox-secret")
        proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=90)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        job = sb.state.queue.jobs[out["request_id"]]
    assert out["kinds"][-1] == "Completed"
    assert out["result"]["seed"] == 7 and out["result"]["images"][0]["url"].startswith(sb.url + "/_media/")
    assert out["cancel"] == 400  # ALREADY_COMPLETED surfaces as an HTTP error, as on fal
    assert out["logs"] > 0
    assert job.key_id == "sandbox-id"  # the key reached the sandbox as id:secret
