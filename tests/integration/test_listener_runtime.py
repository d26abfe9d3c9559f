"""The webhook listener inside the runtime, the TUI and `ask`: a submit gets the listener's URL,
the sandbox delivers a signed webhook, the listener verifies it against the sandbox's JWKS and
stores it, and the TUI shows it in the jobs panel and the chat.

Time never passes by luck: the sandbox clock is advanced by hand (`RunningSandbox.advance` waits
for the webhook attempts it triggers), and notices are awaited with bounded deadlines.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import httpx
import pytest

from agent.cli import main
from agent.core.events import ApprovalRequest, Decision, ToolEnd, ToolStart
from agent.core.runtime import build_runtime
from agent.settings import Settings

pytest.importorskip("sandbox.server")
EP = "fal-ai/flux/schnell"


class Notices:
    """Collects listener notices (from the listener's thread) and waits for one that matches."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, notice: Any) -> None:
        with self._cond:
            self.items.append(notice)
            self._cond.notify_all()

    def wait(self, pred: Any, timeout: float = 20.0) -> Any:
        with self._cond:
            assert self._cond.wait_for(lambda: any(pred(n) for n in self.items), timeout), self.items
            return next(n for n in self.items if pred(n))


async def submit(runtime: Any, args: dict[str, Any]) -> tuple[list[ApprovalRequest], list[Any]]:
    """Estimate then submit through `run_tool` (approved); returns the approval requests and events."""
    asked: list[ApprovalRequest] = []

    async def approver(request: ApprovalRequest) -> Decision:
        asked.append(request)
        return Decision(action="approve")

    runner = runtime.runner
    async for _ in runner.run_tool("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 1}},
                                   approver):
        pass
    events = [ev async for ev in runner.run_tool("submit_queue_request", args, approver)]
    return asked, events


def submitted_id(events: list[Any]) -> str:
    end = next(ev for ev in events if isinstance(ev, ToolEnd) and ev.name == "submit_queue_request")
    assert not end.error, end.content
    artifact = end.artifact if isinstance(end.artifact, dict) else end.artifact.model_dump()
    return artifact["request_id"]


# -- runtime ---------------------------------------------------------------------------------
async def test_no_keys_starts_sandbox_and_listener_and_a_submit_verifies_end_to_end():
    runtime = await asyncio.to_thread(build_runtime, Settings())
    try:
        listener = runtime.listener
        assert runtime.mode == "sandbox" and listener is not None and runtime.webhooks_attached
        assert listener.url.startswith("http://127.0.0.1:") and runtime.notices == []
        notices = Notices()
        listener.subscribe(notices)

        asked, events = await submit(runtime, {"endpoint_id": EP, "arguments": {"prompt": "a fox"}})
        expected = listener.webhook_url(EP)
        assert expected.endswith("/webhooks/fal?endpoint_id=fal-ai/flux/schnell")
        # The approver saw the URL, and the call ran with it.
        assert [r.args.get("webhook_url") for r in asked] == [expected]
        start = next(ev for ev in events if isinstance(ev, ToolStart) and ev.name == "submit_queue_request")
        assert start.args["webhook_url"] == expected
        rid = submitted_id(events)
        assert listener.inbox.endpoint_for(rid) == EP  # the submission was recorded

        await asyncio.to_thread(runtime.sandbox.advance, 120)  # job done, webhook attempted
        got = await asyncio.to_thread(notices.wait, lambda n: n.kind == "received" and n.request_id == rid)
        assert got.status == "OK" and got.endpoint_id == EP
        row = listener.inbox.get(rid)
        body = json.loads(row.body)
        assert row.status == "OK" and row.endpoint_id == EP
        assert body["request_id"] == rid and body["payload"]["images"][0]["url"]
        # The sandbox's delivery log agrees: one signed attempt, answered 200 by our verifier.
        delivery = next(d for d in runtime.sandbox.state.webhooks.deliveries if d.request_id == rid)
        assert delivery.url == expected and delivery.state == "delivered"
        assert [a.status_code for a in delivery.attempts] == [200]
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{listener.url}/healthz")).json()
        assert health["received"] == 1
        # A new persona's runner attaches the same listener.
        assert runtime.switch_persona("ops").webhooks is listener
    finally:
        await runtime.aclose()
    with pytest.raises(httpx.ConnectError):  # aclose stopped the listener
        httpx.get(f"{listener.url}/healthz", timeout=2)


async def test_listener_rejects_a_forged_webhook_and_keeps_a_given_url():
    runtime = await asyncio.to_thread(build_runtime, Settings())
    try:
        headers = {"X-Fal-Webhook-Request-Id": "forged", "X-Fal-Webhook-User-Id": "u",
                   "X-Fal-Webhook-Timestamp": "1", "X-Fal-Webhook-Signature": "00" * 64}
        async with httpx.AsyncClient() as http:
            answer = await http.post(runtime.listener.webhook_url(EP), headers=headers,
                                     content=b'{"request_id":"forged","status":"OK","payload":{}}')
        assert answer.status_code == 401 and runtime.listener.inbox.get("forged") is None
        # A URL the user (or model) chose is never replaced.
        own = "http://127.0.0.1:9/my-hook"
        asked, events = await submit(runtime, {"endpoint_id": EP, "arguments": {"prompt": "x"},
                                               "webhook_url": own})
        assert asked[0].args["webhook_url"] == own
        submitted_id(events)
    finally:
        await runtime.aclose()


async def test_listen_off_means_no_listener_and_no_url():
    runtime = await asyncio.to_thread(build_runtime, Settings(FAL_PERSONA_LISTEN="false"))
    try:
        assert runtime.listener is None and runtime.webhook_url is None
        asked, events = await submit(runtime, {"endpoint_id": EP, "arguments": {"prompt": "x"}})
        assert "webhook_url" not in asked[0].args
        submitted_id(events)
    finally:
        await runtime.aclose()


async def test_a_busy_port_is_a_notice_not_a_crash():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        runtime = await asyncio.to_thread(build_runtime, Settings(FAL_PERSONA_WEBHOOK_PORT=port))
        try:
            assert runtime.mode == "sandbox" and runtime.listener is None
            assert len(runtime.notices) == 1 and f"127.0.0.1:{port}" in runtime.notices[0]
            assert "did not start" in runtime.notices[0]
            assert runtime.runner.webhooks is None
        finally:
            await runtime.aclose()


async def test_live_mode_attaches_only_a_public_url():
    # Live (a key and a base URL), nothing is contacted while building.
    live = {"FAL_KEY": "id:secret", "FAL_QUEUE_BASE_URL": "http://127.0.0.1:9", "FAL_PERSONA_WEBHOOK_PORT": 0}
    assert Settings(**live).listener_enabled is False
    forced = await asyncio.to_thread(build_runtime, Settings(**live, FAL_PERSONA_LISTEN=True))
    try:
        assert forced.mode == "live" and forced.listener is not None and not forced.webhooks_attached
        assert forced.runner.webhooks is None and "cannot reach a local address" in forced.notices[0]
    finally:
        await forced.aclose()
    public = "https://hooks.example.com/fal"
    tunnel = await asyncio.to_thread(build_runtime, Settings(**live, FAL_PERSONA_WEBHOOK_URL=public))
    try:
        assert tunnel.webhooks_attached and tunnel.runner.webhooks is tunnel.listener
        assert tunnel.webhook_url == public and tunnel.notices == []
        assert tunnel.listener.webhook_url(EP) == f"{public}?endpoint_id={EP}"
    finally:
        await tunnel.aclose()
    assert "secret" not in repr(forced.notices)


# -- ask -------------------------------------------------------------------------------------
def test_ask_json_submit_carries_the_webhook_url(capsys):
    assert main(["ask", "--json", "--yes", f'estimate 1 {EP} then submit {EP} prompt "a fox"']) == 0
    out = json.loads(capsys.readouterr().out)
    submit_call = next(c for c in out["tool_calls"] if c["name"] == "submit_queue_request")
    assert "result" in submit_call, submit_call
    url = submit_call["args"]["webhook_url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"/webhooks/fal?endpoint_id={EP}")

    assert main(["ask", "--json", "--yes", "--no-listen", f'estimate 1 {EP} then submit {EP} prompt "x"']) == 0
    out = json.loads(capsys.readouterr().out)
    submit_call = next(c for c in out["tool_calls"] if c["name"] == "submit_queue_request")
    assert "result" in submit_call and "webhook_url" not in submit_call["args"]


# -- TUI -------------------------------------------------------------------------------------
async def _until(pilot: Any, condition: Any, what: str, timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def test_tui_with_the_real_runtime_shows_the_webhook_in_jobs_and_chat(tmp_path):
    from agent.tui.app import FalPersonaApp
    from agent.tui.chat import NoticeMessage
    from agent.tui.keys import DEFAULT_KEYS
    from agent.tui.media_view import MediaPreview
    from agent.tui.screens import ApprovalScreen

    app = FalPersonaApp(settings=Settings(), keys=dict(DEFAULT_KEYS), history_path=tmp_path / "history")

    def notices() -> str:
        return "\n".join(str(w.content) for w in app.query(NoticeMessage))

    async with app.run_test(size=(140, 45)) as pilot:
        await _until(pilot, lambda: app.runtime is not None and app.ready.is_set(), "runtime")
        listener = app.runtime.listener
        assert app.header.webhooks == f"on {listener.webhook_url()}"
        await _until(pilot, lambda: "Webhook listener on" in notices(), "listener notice")

        prompt = app.query_one("#prompt")
        prompt.focus()
        prompt.text = f'estimate 1 {EP} then submit {EP} prompt "a fox"'
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "approval modal")
        shown = json.loads(app.screen.query_one("#approval-args").text)
        assert shown["webhook_url"] == listener.webhook_url(EP)
        await pilot.click("#approve")
        await _until(pilot, lambda: len(app.jobs.rows) == 1 and not app._busy(), "submitted job")
        rid, row = next(iter(app.jobs.rows.items()))

        # Nobody polls or watches: the sandbox runs the job in real time, the app follows it, and
        # the listener's thread publishes the webhook, which the UI applies on its own loop.
        await _until(pilot, lambda: row.outcome == "completed", "job completed on its own, result fetched")
        assert row.result["images"][0]["url"]
        assert "1 image" in str(row.query_one(".job-result").content)
        await _until(pilot, lambda: f"webhook received: OK {EP} {rid}" in notices(), "chat notice")
        await _until(pilot, lambda: len(app.query(MediaPreview)) == 1, "media preview")


class FakeInbox:
    def __init__(self, bodies: dict[str, dict[str, Any]]) -> None:
        self.bodies = bodies

    def get(self, request_id: str) -> Any:
        body = self.bodies.get(request_id)
        return None if body is None else type("Row", (), {"body": json.dumps(body).encode()})()


class FakeListener:
    """subscribe / webhook_url / inbox, like RunningListener; `publish` from any thread."""

    url = "http://127.0.0.1:5555"

    def __init__(self, bodies: dict[str, dict[str, Any]]) -> None:
        self.inbox = FakeInbox(bodies)
        self.callbacks: list[Any] = []

    def webhook_url(self, endpoint_id: str | None = None) -> str:
        return f"{self.url}/webhooks/fal" + (f"?endpoint_id={endpoint_id}" if endpoint_id else "")

    def subscribe(self, callback: Any) -> Any:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def publish(self, notice: Any) -> None:
        for callback in list(self.callbacks):
            callback(notice)


async def test_tui_notices_from_a_foreign_thread_errors_rules_and_schedules(tmp_path):
    from agent.triggers.notices import TriggerNotice
    from agent.tui.app import FalPersonaApp
    from agent.tui.chat import NoticeMessage
    from agent.tui.keys import DEFAULT_KEYS
    from tests.tui.fakes import FakeFactory

    bodies = {"req-bad": {"request_id": "req-bad", "status": "ERROR", "error": "Invalid status code: 422",
                          "payload": {"detail": [{"msg": "prompt is required"}]}}}
    fake = FakeListener(bodies)

    class Factory(FakeFactory):
        async def __call__(self, settings: Any, persona: str | None) -> Any:
            runtime = await super().__call__(settings, persona)
            runtime.listener, runtime.webhooks_attached = fake, True
            runtime.notices = []
            return runtime

    app = FalPersonaApp(runtime_factory=Factory(), settings=Settings(), keys=dict(DEFAULT_KEYS),
                        history_path=tmp_path / "history", clock=lambda: 100.0)

    def notices() -> list[str]:
        return [str(w.content) for w in app.query(NoticeMessage)]

    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.runtime is not None and fake.callbacks, "subscription")
        assert app.header.webhooks == f"on {fake.url}/webhooks/fal"
        sent = [TriggerNotice("received", "req-bad", "ERROR", EP),
                TriggerNotice("done", "req-bad", "ERROR", EP, detail="no rule matched"),
                TriggerNotice("failed", "req-bad", "ERROR", EP, detail="save: disk full"),
                TriggerNotice("schedule_run", "schedule:nightly", detail="ran")]
        publisher = threading.Thread(target=lambda: [fake.publish(n) for n in sent])
        publisher.start()
        await asyncio.to_thread(publisher.join, 5)
        await _until(pilot, lambda: any("schedule_run" in t for t in notices()), "last notice")
        row = app.jobs.rows["req-bad"]
        assert row.status == "ERROR" and "failed" in row.classes
        assert "Invalid status code: 422" in str(row.query_one(".job-result").content)
        hooks = [t for t in notices() if t.startswith("webhook")]
        assert hooks == [f"webhook received: ERROR {EP} req-bad · Invalid status code: 422",
                         f"webhook failed: {EP} · save: disk full",
                         "webhook schedule_run: schedule:nightly · ran"]
        assert list(app.jobs.rows) == ["req-bad"]  # a schedule is not a job
    assert fake.callbacks == []  # unsubscribed on the way out
