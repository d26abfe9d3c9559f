"""The official Python fal_client works unchanged against the sandbox in --tls mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread

SCRIPT = r"""
import json, time
import fal_client  # reads FAL_QUEUE_RUN_HOST and FAL_RUN_HOST at import time

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


def _env(sb) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(sb.fal_client_env(), FAL_KEY="sandbox-id:sandbox-secret")
    return env


def _last_json(stdout: str):
    return json.loads(stdout.strip().splitlines()[-1])


def _run_script(sb, script: str):
    proc = subprocess.run([sys.executable, "-c", script], env=_env(sb), capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _last_json(proc.stdout)


def test_fal_client_env_points_both_hosts_at_the_sandbox(tmp_path):
    with start_in_thread(config=SandboxConfig(data_dir=tmp_path / "tls"), tls=True) as sb:
        env = sb.fal_client_env()
        host = sb.url.split("://", 1)[1]
    assert env == {"FAL_QUEUE_RUN_HOST": host, "FAL_RUN_HOST": host + "/_run", "SSL_CERT_FILE": str(sb.cert_path)}


def test_official_fal_client_submit_status_result(tmp_path):
    config = SandboxConfig(speed=40.0, data_dir=tmp_path / "tls")
    with start_in_thread(config=config, tls=True) as sb:
        assert sb.url.startswith("https://127.0.0.1:") and sb.cert_path is not None
        out = _run_script(sb, SCRIPT)
        job = sb.state.queue.jobs[out["request_id"]]
    assert out["kinds"][-1] == "Completed"
    assert out["result"]["seed"] == 7 and out["result"]["images"][0]["url"].startswith(sb.url + "/_media/")
    assert out["cancel"] == 400  # ALREADY_COMPLETED surfaces as an HTTP error, as on fal
    assert out["logs"] > 0
    assert job.key_id == "sandbox-id"  # the key reached the sandbox as id:secret


RUN_SCRIPT = r"""
import asyncio, json, os
import httpx
import fal_client
from fal_client.client import FalClientHTTPError

controls = "https://" + os.environ["FAL_QUEUE_RUN_HOST"] + "/_sandbox/faults"
verify = os.environ["SSL_CERT_FILE"]
out = {}
out["run"] = fal_client.run("fal-ai/flux/dev", arguments={"prompt": "run-sync", "seed": 11})
out["run_async"] = asyncio.run(fal_client.run_async("fal-ai/flux/schnell", arguments={"prompt": "run-async"}))

def error(call):
    try:
        call()
    except FalClientHTTPError as exc:
        return {"status": exc.status_code, "detail": exc.response.json().get("detail"), "type": exc.error_type}
    return "no error"

bad = {"prompt": "run-bad", "num_images": "two"}
out["run_bad"] = error(lambda: fal_client.run("fal-ai/flux/dev", arguments=bad))
queued = fal_client.submit("fal-ai/flux/dev", arguments=bad)
out["queue_bad"] = error(lambda: queued.get())

enqueued, updates = [], []
out["subscribe"] = fal_client.subscribe("fal-ai/flux/dev", arguments={"prompt": "run-subscribe"}, with_logs=True,
                                        on_enqueue=enqueued.append,
                                        on_queue_update=lambda s: updates.append(type(s).__name__))
out["subscribe_id"], out["updates"] = enqueued[0], updates

handle = fal_client.submit("fal-ai/flux/schnell", arguments={"prompt": "run-events"})
out["events"] = [type(e).__name__ for e in handle.iter_events(with_logs=True, interval=0.02)]
out["events_id"] = handle.request_id

# Injected faults on the run op: a 429 is retried by fal_client, a 503 with a request id is not.
httpx.post(controls, json={"kind": "rate_limit", "times": 2, "retry_after": 0.01, "ops": ["run"]},
           verify=verify).raise_for_status()
out["after_429"] = fal_client.run("fal-ai/flux/schnell", arguments={"prompt": "run-retried"})["prompt"]
out["faults_left"] = httpx.get(controls, verify=verify).json()["faults"]
httpx.post(controls, json={"kind": "server_error", "ops": ["run"]}, verify=verify).raise_for_status()
out["run_503"] = error(lambda: fal_client.run("fal-ai/flux/schnell", arguments={"prompt": "run-503"}))
print(json.dumps(out))
"""


def _job_by_prompt(state, prompt):
    (job,) = [j for j in state.queue.jobs.values() if isinstance(j.input, dict) and j.input.get("prompt") == prompt]
    return job


def test_official_fal_client_run_subscribe_iter_events_and_faults(tmp_path):
    with start_in_thread(config=SandboxConfig(speed=40.0, data_dir=tmp_path / "tls"), tls=True) as sb:
        out = _run_script(sb, RUN_SCRIPT)
        state = sb.state
        run_job, async_job = _job_by_prompt(state, "run-sync"), _job_by_prompt(state, "run-async")
        sub_job, events_job = _job_by_prompt(state, "run-subscribe"), _job_by_prompt(state, "run-events")
    # run / run_async: the model output itself, unchanged (the job's stored result), not IN_QUEUE.
    assert out["run"] == run_job.result_body and out["run"]["seed"] == 11
    assert out["run"]["images"][0]["url"].startswith(sb.url + "/_media/")
    assert out["run_async"] == async_job.result_body and "status" not in out["run_async"]
    # A bad argument: fal's 422 {"detail": [...]}, exactly as the queue's result replays it.
    assert out["run_bad"]["status"] == 422 and out["run_bad"] == out["queue_bad"]
    assert {tuple(e["loc"]) for e in out["run_bad"]["detail"]} == {("body", "num_images")}
    # subscribe: enqueue callback with the request id, updates ending in Completed, then the result.
    assert out["subscribe_id"] == sub_job.request_id and out["subscribe"] == sub_job.result_body
    # (which of Queued/InProgress a poll catches depends on timing; the last update does not)
    kinds = {"Queued", "InProgress", "Completed"}
    assert out["updates"][-1] == "Completed" and set(out["updates"]) <= kinds
    assert out["events"][-1] == "Completed" and set(out["events"]) <= kinds
    assert out["events_id"] == events_job.request_id
    # Faults: two 429s retried away (the fault is used up), then a 503 surfaced as is.
    assert out["after_429"] == "run-retried" and out["faults_left"] == []
    assert out["run_503"] == {"status": 503, "detail": "Runner disconnected (injected fault)",
                              "type": "runner_disconnected"}


MANUAL_SCRIPT = r"""
import json
import fal_client
from fal_client.client import FalClientHTTPError

handle = fal_client.submit("fal-ai/flux/dev", arguments={"prompt": "to-cancel"})
out = {"cancel": fal_client.cancel("fal-ai/flux/dev", handle.request_id)}  # None: 202 accepted
try:
    fal_client.result("fal-ai/flux/dev", handle.request_id)
except FalClientHTTPError as exc:
    out["cancelled"] = [exc.status_code, exc.error_type]
out["run"] = fal_client.run("fal-ai/flux/dev", arguments={"prompt": "held", "seed": 3})
print(json.dumps(out))
"""


def test_official_fal_client_run_on_manual_clock_waits_for_advance(tmp_path):
    config = SandboxConfig(manual_clock=True, data_dir=tmp_path / "tls")
    with start_in_thread(config=config, tls=True) as sb:
        proc = subprocess.Popen([sys.executable, "-c", MANUAL_SCRIPT], env=_env(sb), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            held = None
            while held is None and proc.poll() is None and time.monotonic() < deadline:
                held = next((j for j in list(sb.state.queue.jobs.values()) if j.input.get("prompt") == "held"), None)
                time.sleep(0.01)
            assert held is not None, proc.communicate(timeout=5)
            assert proc.poll() is None and held.state == "IN_QUEUE"  # the frozen clock holds the run
            sb.advance(10)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, stderr[-2000:]
        out = _last_json(stdout)
        assert out["cancel"] is None and out["cancelled"] == [400, "request_cancelled"]
        assert out["run"] == held.result_body and out["run"]["seed"] == 3
