"""MCP servers as a persona's tools: the test's own notes server (stdio, the `mcp` SDK) next to
the fal tools on the sandbox, chained by the offline planner and by a scripted OpenAI-compatible
model; a server that fails to start or dies is reported and the chat goes on."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest
from conftest import WAIT_S, scribe_persona, transcript_events, write_persona
from scripted_openai import ScriptedOpenAI, call, calls, text

from agent.core.events import ApprovalRequest, Decision, ToolEnd, TurnEnd
from agent.mcp.client import McpHub
from agent.mcp.config import McpServerSpec
from agent.personas import PersonaError, load_persona_file

EP = "fal-ai/flux/schnell"
CHAIN = f'submit {EP} prompt "a red fox" then watch it then result then notes_save_note text="fox: $url"'
URL_RE = re.compile(r"http://127\.0\.0\.1:\d+/_media/\S+\.png")
pytestmark = pytest.mark.timeout(180)


def _notes_spec(notes: Path, **extra) -> McpServerSpec:
    return McpServerSpec(name="notes", command=sys.executable,
                         args=[str(Path(__file__).with_name("notes_server.py"))],
                         env={"NOTES_FILE": str(notes), **extra.pop("env", {})}, **extra)


class Approver:
    """Approves everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.asked.append(request)
        return Decision(action="approve")


def _runtime(persona: str = "scribe"):
    from agent.core.runtime import build_runtime
    from agent.settings import Settings

    return build_runtime(Settings().model_copy(update={"listen": False}), persona, source="cli")


async def _turn(runtime, words: str, approver=None) -> tuple[list[ToolEnd], TurnEnd]:
    ends, last = [], None
    async with asyncio.timeout(WAIT_S):
        async for event in runtime.runner.run_turn(words, approver or Approver()):
            if isinstance(event, ToolEnd):
                ends.append(event)
            elif isinstance(event, TurnEnd):
                last = event
    assert last is not None
    return ends, last


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); its state in /proc says whether it ended.
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] == "Z"


# -- the hub on its own -------------------------------------------------------------------------

async def test_hub_loads_prefixed_scoped_tools_and_reports_a_server_that_cannot_start(tmp_path):
    notes = tmp_path / "notes.txt"
    specs = [_notes_spec(notes, tools=["save_*", "read_*"], approval=["save_note"]),
             McpServerSpec(name="ghost", command=str(tmp_path / "no-such-server"))]
    hub = await asyncio.to_thread(McpHub(specs, log_dir=tmp_path / "logs").start, {"search_models"})
    try:
        assert hub.status() == {"notes": "up", "ghost": "failed"}
        assert [t.name for t in hub.tools] == ["notes_save_note", "notes_read_notes"]
        assert hub.approval == ["notes_save_note"]
        assert hub.kinds == {"notes_save_note": "external", "notes_read_notes": "read"}
        [notice] = hub.notices
        assert notice.startswith("MCP server ghost did not start (No such file or directory")
        tools = {t.name: t for t in hub.tools}
        saved = await tools["notes_save_note"].ainvoke({"name": "notes_save_note", "args": {"text": "hi"},
                                                        "id": "1", "type": "tool_call"})
        assert saved.content == "saved note 1" and notes.read_text() == "hi\n"
    finally:
        await asyncio.to_thread(hub.close)


async def test_a_dead_server_gives_typed_errors_and_is_reported_and_close_stops_it(tmp_path):
    pid_file = tmp_path / "pid"
    seen: list[str] = []
    hub = McpHub([_notes_spec(tmp_path / "n.txt", env={"NOTES_PID_FILE": str(pid_file)})],
                 on_notice=seen.append)
    await asyncio.to_thread(hub.start)
    tools = {t.name: t for t in hub.tools}
    pid = int(pid_file.read_text())
    try:
        refused = await tools["notes_refuse"].ainvoke({"name": "notes_refuse", "args": {"why": "nope"},
                                                       "id": "1", "type": "tool_call"})
        assert refused.artifact["error"]["type"] == "McpToolError" and "refused: nope" in refused.content
        assert hub.status()["notes"] == "up"  # a tool's own error leaves the server up
        crashed = await tools["notes_crash"].ainvoke({"name": "notes_crash", "args": {}, "id": "2",
                                                      "type": "tool_call"})
        assert crashed.artifact["error"]["type"] == "McpServerDown"
        assert "stopped during the call" in crashed.content
        assert hub.status()["notes"] == "dead"
        assert seen and seen[0].startswith("MCP server notes stopped")
        started = time.monotonic()
        after = await tools["notes_read_notes"].ainvoke({"name": "notes_read_notes", "args": {}, "id": "3",
                                                         "type": "tool_call"})
        assert time.monotonic() - started < 1.0  # no wait on a dead server
        assert after.artifact["error"]["type"] == "McpServerDown" and "is not running" in after.content
    finally:
        await asyncio.to_thread(hub.close)
    deadline = time.monotonic() + 10
    while not _pid_gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _pid_gone(pid)


async def test_close_stops_a_live_stdio_server(tmp_path):
    pid_file = tmp_path / "pid"
    hub = McpHub([_notes_spec(tmp_path / "n.txt", env={"NOTES_PID_FILE": str(pid_file)})])
    await asyncio.to_thread(hub.start)
    pid = int(pid_file.read_text())
    assert not _pid_gone(pid)
    await asyncio.to_thread(hub.close)
    deadline = time.monotonic() + 10
    while not _pid_gone(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _pid_gone(pid) and hub.status()["notes"] == "closed"


def test_persona_file_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('''
description = "x"
budget_usd = 1
tools = ["search_models"]
system_prompt = "hi"
[[mcp_servers]]
name = "notes"
command = "python"
url = "http://127.0.0.1:1/mcp"
[[mcp_servers]]
name = "Bad Name"
url = "ftp://example.test"
''')
    with pytest.raises(PersonaError) as err:
        load_persona_file(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: ") or message.startswith("bad.toml: ")
    assert "mcp_servers[0]: give either command (stdio) or url" in message
    assert "mcp_servers[1].name: String should match pattern" in message
    assert "mcp_servers[1].url: must be an http:// or https:// URL" in message


# -- in a persona's chat ------------------------------------------------------------------------

async def test_offline_planner_chains_a_fal_result_into_the_notes_server(home, tmp_path):
    notes = tmp_path / "notes.txt"
    scribe_persona(home, notes)
    runtime = await asyncio.to_thread(_runtime)
    approver = Approver()
    try:
        assert "notes_save_note" in [t.name for t in runtime.runner.tools]
        ends, last = await _turn(runtime, CHAIN, approver)
    finally:
        await runtime.aclose()
    assert [e.name for e in ends] == ["submit_queue_request", "stream_queue_status", "get_queue_result",
                                      "notes_save_note"]
    assert not any(e.error for e in ends), [e.content for e in ends if e.error]
    url = URL_RE.search(ends[2].content).group(0)
    assert notes.read_text() == f"fox: {url}\n"
    assert [a.name for a in approver.asked] == ["submit_queue_request", "notes_save_note"]
    assert approver.asked[1].kind == "external"
    assert "called a tool with notes_save_note" in last.answer
    [(_, events)] = transcript_events(home, "cli")
    saved = [e for e in events if e["data"].get("name") == "notes_save_note"]
    kinds = [e["kind"] for e in saved]
    assert kinds.index("approval") < kinds.index("tool_call") < kinds.index("tool_result")
    call_row = next(e for e in saved if e["kind"] == "tool_call")
    assert call_row["data"]["args"] == {"text": f"fox: {url}"}


async def test_scripted_model_chains_a_fal_result_into_the_notes_server(home, tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    scribe_persona(home, notes, approval="[]")

    def request_id(body):  # from the submit's answer, the first tool message
        first = next(m for m in body["messages"] if m.get("role") == "tool")
        return re.search(r"request_id: ([\w-]+)", str(first["content"])).group(1)

    def image_url(body):
        found = URL_RE.search(ScriptedOpenAI.last_tool_text(body))
        assert found, ScriptedOpenAI.last_tool_text(body)
        return found.group(0)

    script = [
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a red fox"}})),
        lambda body: calls(call("stream_queue_status", {"endpoint_id": EP, "request_id": request_id(body)})),
        lambda body: calls(call("get_queue_result", {"endpoint_id": EP, "request_id": request_id(body)})),
        lambda body: calls(call("notes_save_note", {
            "text": "fox: " + image_url(body)})),
        text("Saved the fox to your notes."),
    ]
    with ScriptedOpenAI(script) as model:
        monkeypatch.setenv("OPENAI_BASE_URL", model.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
        runtime = await asyncio.to_thread(_runtime)
        try:
            ends, last = await _turn(runtime, "make a red fox and note where it is")
        finally:
            await runtime.aclose()
        offered = {t["function"]["name"] for t in model.requests[0]["tools"]}
        save_result = model.tool_messages(4)[-1]["content"]
    assert {"notes_save_note", "notes_read_notes", "submit_queue_request"} <= offered
    assert [e.name for e in ends][-1] == "notes_save_note" and not any(e.error for e in ends)
    url = URL_RE.search(ends[2].content).group(0)
    assert notes.read_text() == f"fox: {url}\n"
    assert save_result == "saved note 1"  # the model read the MCP tool's answer
    assert last.answer == "Saved the fox to your notes."


async def test_a_crashing_server_leaves_the_chat_usable(home, tmp_path):
    scribe_persona(home, tmp_path / "notes.txt", extra_servers=f'''
[[mcp_servers]]
name = "ghost"
command = "{tmp_path / 'no-such-server'}"
''')
    runtime = await asyncio.to_thread(_runtime)
    try:
        from agent.tui.webhooks import start_notices

        assert any(n.startswith("MCP server ghost did not start") for n in start_notices(runtime))
        crashed, first = await _turn(runtime, "notes_crash")
        assert crashed[0].error and "stopped during the call" in crashed[0].content
        assert runtime.mcp.status()["notes"] == "dead"
        searched, second = await _turn(runtime, "search flux")
        assert [e.name for e in searched] == ["search_models"] and not searched[0].error
        assert EP in second.answer
        later, third = await _turn(runtime, "notes_read_notes")
        assert later[0].error and "is not running" in later[0].content
        assert "the last step failed" in third.answer
    finally:
        await runtime.aclose()


async def test_ask_prints_mcp_notices_on_stderr_and_goes_on(home, tmp_path, capsys):
    from agent.cli import main

    scribe_persona(home, tmp_path / "notes.txt", approval="[]", extra_servers=f'''
[[mcp_servers]]
name = "ghost"
command = "{tmp_path / 'no-such-server'}"
''')
    code = await asyncio.to_thread(main, ["ask", "--no-listen", "--persona", "scribe",
                                          "notes_save_note text=hello then notes_crash then search flux"])
    out = capsys.readouterr()
    assert "fal-persona: MCP server ghost did not start" in out.err
    assert "fal-persona: MCP server notes stopped" in out.err
    assert code == 4 and out.err.strip().splitlines()[-1].startswith("fal-persona: notes_crash failed")
    assert (tmp_path / "notes.txt").read_text() == "hello\n"


async def test_an_http_mcp_server_is_a_persona_tool_source(home, http_server):
    server = http_server("--persona", "analyst")
    write_persona(home, "relay", f'''
description = "Uses another fal-persona over MCP"
budget_usd = 1.0
tools = ["get_pricing"]
system_prompt = "Relay."
[[mcp_servers]]
name = "remote"
url = "{server.url}"
tools = ["search_*"]
''')
    runtime = await asyncio.to_thread(_runtime, "relay")
    try:
        assert [t.name for t in runtime.runner.tools] == ["get_pricing", "remote_search_models"]
        ends, _ = await _turn(runtime, "remote_search_models query=flux")
    finally:
        await runtime.aclose()
    assert not ends[0].error and EP in ends[0].content
