"""The TUI's entry point: a listener in a thread, notices to subscribers, and the webhook URL."""

from __future__ import annotations

import threading

import httpx

from agent.triggers.listener import start_in_thread
from agent.triggers.rules import Rule
from tests.triggers.support import fal_body


def test_listener_in_thread_verifies_stores_and_notifies(signer, jwks_server, inbox):
    prompts, notices = [], []
    done = threading.Event()

    async def runner(persona, text, approve):
        prompts.append(text)
        return "ok"

    def on_notice(notice):
        notices.append((notice.kind, notice.request_id, notice.endpoint_id))
        if notice.kind == "done":
            done.set()

    listener = start_in_thread(jwks=jwks_server.cache(), inbox=inbox, transcript=None,
                               rules=[Rule(name="r", endpoint="fal-ai/flux/*", prompt="saw {request_id}")],
                               schedules=[], prompt_runner=runner)
    try:
        unsubscribe = listener.subscribe(on_notice)
        url = listener.webhook_url("fal-ai/flux/dev")
        assert url == f"{listener.url}/webhooks/fal?endpoint_id=fal-ai/flux/dev"
        listener.record_submission("job-1", "fal-ai/flux/dev")
        body = fal_body("job-1")
        response = httpx.post(listener.public_url, content=body, headers=signer.headers(body, "job-1"))
        assert response.status_code == 200
        assert done.wait(10), f"no 'done' notice; got {notices}"
        assert prompts == ["saw job-1"]
        assert ("received", "job-1", None) in notices and ("done", "job-1", "fal-ai/flux/dev") in notices
        unsubscribe()
        bad = httpx.post(listener.public_url, content=body, headers={})
        assert bad.status_code == 401
    finally:
        listener.stop()
    assert not listener._thread.is_alive()
