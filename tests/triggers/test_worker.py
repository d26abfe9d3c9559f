"""The action worker: linked tool + save_media + prompt, transcript records, retry and dead letters."""

from __future__ import annotations

import httpx
import pytest
from langchain_core.tools import StructuredTool

from agent.triggers.actions import ActionExecutor
from agent.triggers.inbox import Inbox, NewEvent
from agent.triggers.rules import Rule
from agent.triggers.worker import ActionWorker, RetryPolicy
from tests.triggers.support import FakeClock, fal_body


class Recorder:
    """A TranscriptStore stand-in that keeps what was recorded."""

    def __init__(self):
        self.events = []

    def new_session(self, user, persona, source="tui"):
        return f"s-{persona}"

    def record(self, session_id, kind, data, *, user, persona, duration_s=None, ref=None):
        self.events.append({"kind": kind, "data": data, "ref": ref, "persona": persona})
        return len(self.events)


def result_tool(calls, fail_times=0):
    """A fake get_queue_result: content + artifact, failing the first `fail_times` calls."""

    async def get_queue_result(endpoint_id: str, request_id: str):
        calls.append((endpoint_id, request_id))
        if len(calls) <= fail_times:
            return "Error: the queue is busy; try again later.", {"error": {"type": "busy"}}
        return "done", {"images": [{"url": "https://media.test/out.png", "content_type": "image/png"}]}

    return StructuredTool.from_function(coroutine=get_queue_result, name="get_queue_result",
                                        description="fetch a result", response_format="content_and_artifact")


def media_client(downloads):
    def handler(request):
        downloads.append(str(request.url))
        return httpx.Response(200, content=b"\x89PNG fake")
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def store(inbox, rid, clock, endpoint=None, status="OK"):
    body = fal_body(rid, status=status, payload={"detail": []} if status == "ERROR" else None)
    assert inbox.add(NewEvent(rid, clock(), status, body, "user-1", endpoint))


@pytest.fixture
def clock():
    return FakeClock()


async def test_tool_then_save_media_then_prompt_all_recorded(inbox, clock, tmp_path):
    calls, downloads, prompts = [], [], []

    async def runner(persona, text, approve):
        prompts.append((persona, text, approve))
        return "Three variations: ..."

    transcript = Recorder()
    executor = ActionExecutor(tools={"get_queue_result": result_tool(calls)}, prompt_runner=runner,
                              transcript=transcript, media_client=media_client(downloads))
    rule = Rule(name="fetch-save-summarise", persona="producer", endpoint="fal-ai/flux/*",
                tool="get_queue_result", save_media=str(tmp_path / "media"),
                prompt="Summarise {request_id} from {endpoint_id} ({status})")
    worker = ActionWorker(inbox, [rule], executor, clock=clock)
    store(inbox, "r1", clock)
    inbox.record_submission("r1", "fal-ai/flux/dev", clock())  # submitted_jobs is the authority
    assert await worker.process_due() == 1
    assert calls == [("fal-ai/flux/dev", "r1")]
    assert downloads == ["https://media.test/out.png"]  # from the tool's artifact, not the webhook
    assert (tmp_path / "media" / "r1-1.png").read_bytes() == b"\x89PNG fake"
    assert prompts == [("producer", "Summarise r1 from fal-ai/flux/dev (OK)", False)]
    row = inbox.get("r1")
    assert (row.state, row.attempts, row.last_error) == ("done", 1, None)
    kinds = [(e["kind"], e["ref"]) for e in transcript.events]
    assert kinds == [("trigger_event", "r1"), ("trigger_action", "r1")]
    action = transcript.events[1]["data"]
    assert action["saved"] and action["answer"].startswith("Three") and action["tool"]["name"] == "get_queue_result"


async def test_failed_action_backs_off_then_dead_letters(inbox, clock):
    calls = []
    transcript = Recorder()
    executor = ActionExecutor(tools={"get_queue_result": result_tool(calls, fail_times=99)},
                              transcript=transcript)
    rule = Rule(name="fetch", tool="get_queue_result", max_attempts=3)
    worker = ActionWorker(inbox, [rule], executor, clock=clock, policy=RetryPolicy(base_s=10, factor=2))
    store(inbox, "r1", clock, endpoint="fal-ai/flux/dev")
    await worker.process_due()
    row = inbox.get("r1")
    assert (row.state, row.attempts) == ("failed", 1) and "busy" in row.last_error
    assert row.next_attempt_at == clock() + 10
    clock.advance(9)
    assert await worker.process_due() == 0 and len(calls) == 1  # not due yet
    clock.advance(1)
    await worker.process_due()
    row = inbox.get("r1")
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 2, clock() + 20)
    clock.advance(20)
    await worker.process_due()
    row = inbox.get("r1")
    assert (row.state, row.attempts) == ("dead", 3) and len(calls) == 3
    clock.advance(10_000)
    assert await worker.process_due() == 0 and len(calls) == 3  # dead letters stay dead
    errors = [e for e in transcript.events if e["kind"] == "trigger_action"]
    assert len(errors) == 3 and all("error" in e["data"] for e in errors)


async def test_retry_succeeds_and_skips_rules_that_already_succeeded(inbox, clock):
    calls, prompts = [], []

    async def runner(persona, text, approve):
        prompts.append(text)
        return "ok"

    executor = ActionExecutor(tools={"get_queue_result": result_tool(calls, fail_times=1)},
                              prompt_runner=runner)
    rules = [Rule(name="say", prompt="hi {request_id}"), Rule(name="fetch", tool="get_queue_result")]
    worker = ActionWorker(inbox, rules, executor, clock=clock, policy=RetryPolicy(base_s=1))
    store(inbox, "r1", clock, endpoint="fal-ai/x")
    await worker.process_due()
    assert inbox.get("r1").state == "failed"
    clock.advance(1)
    await worker.process_due()
    assert inbox.get("r1").state == "done"
    assert prompts == ["hi r1"] and len(calls) == 2


async def test_unknown_endpoint_and_spend_tools_dead_letter_at_once(inbox, clock):
    executor = ActionExecutor(tools={"get_queue_result": result_tool([])})
    rules = [Rule(name="fetch", tool="get_queue_result")]
    worker = ActionWorker(inbox, rules, executor, clock=clock)
    store(inbox, "r1", clock)  # no endpoint known anywhere
    await worker.process_due()
    row = inbox.get("r1")
    assert row.state == "dead" and "endpoint is unknown" in row.last_error

    spend = Rule(name="again", tool="submit_queue_request", args={"endpoint_id": "x", "arguments": {}})
    worker = ActionWorker(inbox, [spend], ActionExecutor(tools={}), clock=clock)
    store(inbox, "r2", clock)
    await worker.process_due()
    assert inbox.get("r2").state == "dead" and "approve_spend" in inbox.get("r2").last_error


async def test_events_no_rule_matches_are_settled_done_in_one_pass(inbox, clock):
    worker = ActionWorker(inbox, [Rule(name="errs", status="ERROR", prompt="p")], ActionExecutor(), clock=clock)
    for i in range(5):
        store(inbox, f"r{i}", clock)
    assert await worker.process_due() == 5
    assert {r.state for r in inbox.list()} == {"done"}
    assert all(r.outcome == "no rule matched" for r in inbox.list())


async def test_a_new_worker_resumes_what_a_dead_process_left(tmp_path, clock):
    path = tmp_path / "resume.sqlite3"
    first = Inbox(path)
    store(first, "r1", clock, endpoint="fal-ai/x")
    first.close()  # the process died after the 200, before any action ran
    prompts = []

    async def runner(persona, text, approve):
        prompts.append(text)
        return "ok"

    second = Inbox(path)
    worker = ActionWorker(second, [Rule(name="p", prompt="{request_id}")],
                          ActionExecutor(prompt_runner=runner), clock=clock)
    await worker.process_due()
    assert prompts == ["r1"] and second.get("r1").state == "done"
    second.close()


async def test_notices_are_published(inbox, clock):
    from agent.triggers.notices import Subscribers

    subs, seen = Subscribers(), []
    subs.subscribe(seen.append)
    subs.subscribe(lambda n: 1 / 0)  # a broken subscriber harms nobody
    worker = ActionWorker(inbox, [], ActionExecutor(), clock=clock, subscribers=subs)
    store(inbox, "r1", clock)
    await worker.process_due()
    assert [(n.kind, n.request_id) for n in seen] == [("done", "r1")]


async def test_real_transcript_store_gets_trigger_action_with_ref(inbox, clock):
    from agent.transcript.store import TranscriptStore

    transcript = TranscriptStore()

    async def runner(persona, text, approve):
        return "answer"

    worker = ActionWorker(inbox, [Rule(name="p", persona="producer", prompt="go {request_id}")],
                          ActionExecutor(prompt_runner=runner, transcript=transcript), clock=clock)
    store(inbox, "r9", clock)
    await worker.process_due()
    session = transcript.list_sessions()[0]["id"]
    events = transcript.events(session)
    kinds = [(e["kind"], e["ref"]) for e in events]
    assert ("trigger_action", "r9") in kinds and ("trigger_event", "r9") in kinds
