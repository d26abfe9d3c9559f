"""`fal-persona ask`: in-process through agent.cli.main and as the real console script, against
the sandbox, with the offline planner or a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_openai import ScriptedOpenAI, call, calls, text

from agent.cli import main
from agent.transcript.store import TranscriptStore

pytest.importorskip("sandbox.server")
EP = "fal-ai/flux/schnell"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SCRIPT_BIN = Path(sys.executable).with_name("fal-persona")


def _json_out(capsys):
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_ask_offline_chain_against_the_sandbox(capsys):
    chain = f'search flux then estimate 1 {EP} then submit {EP} prompt "a fox" then watch it then result'
    assert main(["ask", "--json", "--yes", "--user", "ana", chain]) == 0
    out, _ = _json_out(capsys)
    assert [c["name"] for c in out["tool_calls"]] == ["search_models", "estimate_pricing", "submit_queue_request",
                                                      "stream_queue_status", "get_queue_result"]
    assert all("result" in c for c in out["tool_calls"]), out["tool_calls"]
    assert "COMPLETED" in out["tool_calls"][3]["result"] and out["spent_usd"] > 0
    rows = TranscriptStore().events(out["session_id"])
    assert {"user_prompt", "approval", "tool_progress", "tool_result", "answer"} <= {r["kind"] for r in rows}
    assert {r["user"] for r in rows} == {"ana"}


def test_ask_without_a_terminal_rejects_safely(capsys):
    assert main(["ask", "--json", f'estimate 1 {EP} then generate "x" with {EP}']) == 5  # rejected
    out, err = _json_out(capsys)
    submit = out["tool_calls"][-1]
    assert submit["name"] == "submit_queue_request" and "Rejected" in submit["error"]
    assert "no terminal" in err and out["spent_usd"] == 0 and out["exit_code"] == 5
    assert err.strip().splitlines()[-1].startswith("fal-persona: approval rejected")
    # The planner's summary says the step was declined, not that it broke.
    assert "(rejected: not run)" in out["answer"] and "you rejected the last step" in out["answer"]


def test_ask_plain_text_and_not_understood(capsys):
    assert main(["ask", "--no-log", "paint my house"]) == 3  # not understood
    out = capsys.readouterr()
    assert "did not understand" in out.out and "/help" in out.out and "sandbox" in out.err


def test_ask_unknown_persona_is_one_line_exit_2(capsys):
    assert main(["ask", "--persona", "nobody", "help"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fal-persona: ") and "nobody" in err and "\n" not in err


def _fox_script():
    def with_request_id(tool):
        def turn(body):
            texts = [str(m["content"]) for m in body["messages"] if m.get("role") == "tool"]
            rid = next(UUID.search(t).group(0) for t in reversed(texts) if UUID.search(t))
            return calls(call(tool, {"endpoint_id": EP, "request_id": rid}))
        return turn

    return [
        calls(call("search_models", {"query": "flux"})),
        calls(call("get_pricing", {"endpoint_ids": [EP]})),
        calls(call("estimate_pricing", {"estimate_type": "unit_price", "endpoints": {EP: 1}})),
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "a fox"}})),
        with_request_id("stream_queue_status"),
        with_request_id("get_queue_result"),
        text("Here is your fox."),
    ]


def _run_script(args, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update({"FAL_PERSONA_HOME": str(tmp_path / "home"), "LANGSMITH_TRACING": "false", **env_extra})
    return subprocess.run([str(SCRIPT_BIN), "ask", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)


def test_console_script_chain_with_a_scripted_openai_server(tmp_path):
    with ScriptedOpenAI(_fox_script()) as srv:
        proc = _run_script(["--json", "--yes", "make me a fox"], {"OPENAI_BASE_URL": srv.url}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["answer"] == "Here is your fox." and out["mode"] == "sandbox"
    assert [c["name"] for c in out["tool_calls"]] == ["search_models", "get_pricing", "estimate_pricing",
                                                      "submit_queue_request", "stream_queue_status",
                                                      "get_queue_result"]
    assert all("result" in c for c in out["tool_calls"]) and out["spent_usd"] > 0
    assert len(srv.requests) == 7 and all(r["stream"] for r in srv.requests)


def test_console_script_no_approve_submits_nothing(tmp_path):
    script = _fox_script()[2:4] + [text("Not submitted.")]
    with ScriptedOpenAI(script) as srv:
        proc = _run_script(["--json", "--no-approve", "fox"], {"OPENAI_BASE_URL": srv.url}, tmp_path)
    out = json.loads(proc.stdout)
    assert proc.returncode == 5 and out["answer"] == "Not submitted."  # an approval rejected
    assert "Rejected" in out["tool_calls"][-1]["error"] and out["spent_usd"] == 0


def test_console_script_model_down_is_one_line_without_secrets(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = "sk-test-" + "x" * 32
    proc = _run_script(["search flux"], {"OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
                                         "OPENAI_API_KEY": secret}, tmp_path)
    assert proc.returncode == 7  # the turn failed
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("fal-persona: ") and "Traceback" not in proc.stderr
    assert secret not in proc.stderr + proc.stdout
