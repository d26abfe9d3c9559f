"""End to end with the real sandbox: it signs and delivers, the listener verifies with its JWKS,
stores, and a rule acts through the real fal tools (and, for prompts, the real agent runner)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from agent.settings import Settings
from agent.transcript.store import TranscriptStore
from agent.triggers.inbox import Inbox
from agent.triggers.listener import start_in_thread as start_listener
from agent.triggers.rules import Rule
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread as start_sandbox

ENDPOINT = "fal-ai/flux/dev"
KEY = {"Authorization": "Key sandbox-key:sandbox-secret"}


@pytest.fixture
def sandbox():
    sb = start_sandbox(config=SandboxConfig(manual_clock=True))
    yield sb
    sb.stop()


@pytest.fixture
def store(tmp_path):
    transcript = TranscriptStore(tmp_path / "transcript.sqlite3")
    yield transcript
    transcript.close()


def run_listener(sandbox, tmp_path, store, rule: Rule):
    """A listener whose tools and JWKS point at `sandbox`; returns it and a 'settled' waiter."""
    config = Settings().fal_config(base_url=sandbox.url)

    async def tools():
        from tools import build_fal_tools

        # Built on the listener's loop: an httpx pool cannot cross event loops.
        return {t.name: t for t in build_fal_tools(config=config)}

    listener = start_listener(jwks_url=config.jwks_url, tools=tools, rules=[rule], schedules=[],
                              transcript=store, inbox=Inbox(tmp_path / "inbox.sqlite3"))
    settled: dict[str, str] = {}
    event = threading.Event()

    def on_notice(notice):
        if notice.kind in ("done", "failed", "dead"):
            settled[notice.request_id] = notice.kind
            event.set()

    listener.subscribe(on_notice)
    return listener, settled, event


def submit_and_deliver(sandbox, listener, settled_event) -> str:
    """Submit a job with the listener's webhook URL, then move the sandbox clock until it settles."""
    response = httpx.post(f"{sandbox.url}/{ENDPOINT}", headers=KEY, json={"prompt": "a red fox"},
                          params={"fal_webhook": listener.webhook_url(ENDPOINT)})
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    listener.record_submission(request_id, ENDPOINT)
    deadline = time.monotonic() + 60
    while not settled_event.is_set():
        assert time.monotonic() < deadline, "the webhook never settled"
        sandbox.advance(5)  # waits for the delivery attempts this step triggers
        settled_event.wait(0.2)
    return request_id


def rows_with_ref(store: TranscriptStore, ref: str) -> list[dict]:
    rows = []
    for session in store.list_sessions(limit=50):
        rows += [e for e in store.events(session["id"]) if e["ref"] == ref]
    return rows


def test_signed_sandbox_webhook_runs_the_linked_tool_and_saves_the_png(sandbox, tmp_path, store):
    media = tmp_path / "media"
    rule = Rule(name="keep", endpoint="fal-ai/flux/*", status="OK", tool="get_queue_result",
                save_media=str(media))
    listener, settled, event = run_listener(sandbox, tmp_path, store, rule)
    try:
        request_id = submit_and_deliver(sandbox, listener, event)
        assert settled == {request_id: "done"}
        row = listener.inbox.get(request_id)
        assert row.state == "done" and row.endpoint_id == ENDPOINT and row.status == "OK"
        assert "saved 1 file(s)" in (row.outcome or "")
        files = list(media.iterdir())
        assert len(files) == 1 and files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        listener.stop()
    actions = [r for r in rows_with_ref(store, request_id) if r["kind"] == "trigger_action"]
    assert len(actions) == 1
    assert actions[0]["data"]["tool"]["name"] == "get_queue_result"
    assert actions[0]["data"]["saved"] == [str(files[0])]


def test_prompt_action_runs_through_the_agent_runner_and_is_logged_with_the_event_id(
        sandbox, tmp_path, store):
    # No prompt_runner injected: the executor runs a real AgentRunner with the offline planner
    # (the tests' environment has no OpenAI settings) on the same sandbox-bound tools.
    rule = Rule(name="look", endpoint="fal-ai/flux/*", prompt="result {endpoint_id} {request_id}")
    listener, settled, event = run_listener(sandbox, tmp_path, store, rule)
    try:
        request_id = submit_and_deliver(sandbox, listener, event)
        row = listener.inbox.get(request_id)
        assert settled == {request_id: "done"}, row.last_error
        assert row.outcome and "prompt answered" in row.outcome
    finally:
        listener.stop()
    rows = rows_with_ref(store, request_id)
    kinds = [r["kind"] for r in rows]
    # The whole turn (prompt, model calls, tool call and result, answer) carries the event id.
    for kind in ("trigger_event", "user_prompt", "model_request", "tool_call", "tool_result",
                 "answer", "trigger_action"):
        assert kind in kinds, kinds
    calls = [r for r in rows if r["kind"] == "tool_call"]
    assert calls and calls[0]["data"].get("name") == "get_queue_result", kinds
    action = next(r for r in rows if r["kind"] == "trigger_action")
    assert action["data"]["prompt"] == f"result {ENDPOINT} {request_id}"
    assert "get_queue_result" in action["data"]["answer"] and request_id in action["data"]["answer"]
