"""Issue 12.4/12.5: a submit whose answer is lost is reported as "may have been created", with no
retry hint, and the guard refuses the same submit again in that turn unless a fresh approval
that says so is given. The sandbox creates the job and then garbles (or withholds) its answer;
a scripted OpenAI-compatible model asks for the same submit twice."""

from __future__ import annotations

import json

import pytest

from agent.core.events import ApprovalRequest, Decision, ToolEnd
from agent.core.guard import REPEAT_WARNING
from agent.core.runner import AgentRunner
from agent.personas import load_personas
from agent.settings import Settings
from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.agent.scripted_openai import ScriptedOpenAI, call, calls, text
from tools.catalog import build_fal_tools
from tools.fal.client import FalClient

EP = "fal-ai/flux/schnell"
ARGS = {"prompt": "a red fox"}
KEY = "resubmit-id:resubmit-secret-value"


@pytest.fixture
def box():
    sb = start_in_thread(host="127.0.0.1", port=0, config=SandboxConfig(manual_clock=True))
    try:
        yield sb
    finally:
        sb.stop()


def _live_env(monkeypatch, sandbox_url: str, llm_url: str) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("FAL_QUEUE_BASE_URL", sandbox_url)
    monkeypatch.setenv("FAL_API_BASE_URL", sandbox_url + "/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", llm_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-resubmit-test-0123456789abcdef")
    monkeypatch.setenv("FAL_PERSONA_LLM_MAX_RETRIES", "0")


def _twice(arguments: dict | None = None) -> list:
    return [calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": ARGS})),
            calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": arguments or ARGS})),
            text("Done.")]


class Approver:
    def __init__(self, approve_warned: bool) -> None:
        self.approve_warned = approve_warned
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.requests.append(request)
        if request.warning and not self.approve_warned:
            return Decision(action="reject", reason="not twice")
        return Decision(action="approve")


async def _turn(persona_name: str, approver: Approver, *, approval: list[str] | None = None,
                prompts: tuple[str, ...] = ("make me a fox",)) -> list:
    settings = Settings()
    persona = load_personas()[persona_name]
    if approval is not None:
        persona = persona.model_copy(update={"approval": approval})
    client = FalClient(settings.fal_config())
    runner = AgentRunner(settings, persona, build_fal_tools(client=client), user="t")
    events = []
    for prompt in prompts:
        events += [e async for e in runner.run_turn(prompt, approver)]
    await client.aclose()
    return events


def _submits(events: list) -> list[ToolEnd]:
    return [e for e in events if isinstance(e, ToolEnd) and e.name == "submit_queue_request"]


async def test_the_same_submit_after_an_unknown_outcome_is_refused(monkeypatch, box):
    box.state.faults.add("malformed_json", ops=["submit"], times=1)  # created, answer garbled
    with ScriptedOpenAI(_twice()) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        approver = Approver(approve_warned=False)
        events = await _turn("producer", approver)
        sent_back = [m["content"] for m in llm.tool_messages(1)]
    first, second = _submits(events)
    assert "SubmitUnknownError" in first.content
    assert "may have been created" in first.content
    assert "retry" not in first.content.lower() and "retry" not in sent_back[0].lower()
    assert first.error and second.error
    # The second was put to the approver with the warning, rejected, and never sent.
    assert [bool(r.warning) for r in approver.requests] == [False, True]
    assert approver.requests[1].warning == REPEAT_WARNING
    assert "may have been created at fal" in second.content and "do not submit them again" in second.content
    assert len(box.state.queue.jobs) == 1  # fal has exactly the one job the lost answer created


async def test_a_fresh_approval_that_says_so_lets_it_through(monkeypatch, box):
    box.state.faults.add("malformed_json", ops=["submit"], times=1)
    with ScriptedOpenAI(_twice()) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        approver = Approver(approve_warned=True)
        events = await _turn("producer", approver)
    first, second = _submits(events)
    assert first.error and not second.error
    assert approver.requests[1].warning == REPEAT_WARNING
    assert len(box.state.queue.jobs) == 2


async def test_a_persona_without_submit_approval_is_still_asked(monkeypatch, box):
    box.state.faults.add("malformed_json", ops=["submit"], times=1)
    with ScriptedOpenAI(_twice()) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        approver = Approver(approve_warned=False)
        events = await _turn("producer", approver, approval=[])
    first, second = _submits(events)
    assert [r.warning for r in approver.requests] == [REPEAT_WARNING]  # only the repeat is asked
    assert first.error and second.error and len(box.state.queue.jobs) == 1


async def test_other_arguments_or_a_later_turn_are_not_held_back(monkeypatch, box):
    box.state.faults.add("malformed_json", ops=["submit"], times=1)
    script = _twice({"prompt": "a blue fox"})
    with ScriptedOpenAI(script) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        approver = Approver(approve_warned=False)
        events = await _turn("producer", approver)
    assert [r.warning for r in approver.requests] == ["", ""]
    assert not _submits(events)[1].error

    box.state.faults.add("malformed_json", ops=["submit"], times=1)
    script = [calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": ARGS})), text("lost"),
              calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": ARGS})), text("again")]
    with ScriptedOpenAI(script) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        approver = Approver(approve_warned=False)
        events = await _turn("producer", approver, prompts=("fox", "the user asks for it again"))
    assert [r.warning for r in approver.requests] == ["", ""]  # a new turn: the user asked again
    assert [e.error for e in _submits(events)] == [True, False]


async def test_a_submit_timed_out_after_sending_is_unknown_too(monkeypatch, box):
    box.state.faults.add("delay", ops=["submit"], times=1, delay_s=600)
    with ScriptedOpenAI(_twice()) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        monkeypatch.setenv("FAL_DEADLINE_S", "0.5")
        approver = Approver(approve_warned=False)
        events = await _turn("producer", approver)
    first, second = _submits(events)
    assert "SubmitUnknownError" in first.content and "may have been created" in first.content
    assert "retry" not in first.content.lower()
    assert second.error and approver.requests[-1].warning == REPEAT_WARNING
    await __import__("asyncio").to_thread(box.advance, 601)  # let the held answer go


def test_ask_yes_does_not_approve_the_repeat(monkeypatch, box, capsys):
    from agent.cli import main

    box.state.faults.add("malformed_json", ops=["submit"], times=1)
    with ScriptedOpenAI(_twice()) as llm:
        _live_env(monkeypatch, box.url, llm.url)
        code = main(["ask", "--no-listen", "--json", "--yes", "make me a fox"])
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert code == data["exit_code"] == 4  # the first submit's unknown outcome decides
    assert "may have been created" in data["error"] and "retry" not in data["error"].lower()
    assert "Not with --yes" in out.err
    assert [("error" in c) for c in data["tool_calls"]] == [True, True]
    assert len(box.state.queue.jobs) == 1
