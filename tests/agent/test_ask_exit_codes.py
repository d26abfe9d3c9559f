"""`fal-persona ask` for scripts: every exit code and its one-line reason, and result media saved
to disk before the built-in sandbox stops. Driven through the real command (agent.cli.main
in-process, or the console script), with no keys: the sandbox and the offline planner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_openai import ScriptedOpenAI, call, calls, text

from agent.cli import ask, main

pytest.importorskip("sandbox.server")
EP = "fal-ai/flux/schnell"
CHAIN = f'estimate 1 {EP} then submit {EP} prompt "a red fox" then watch it then result'
MISSING = "00000000-0000-0000-0000-000000000000"
SCRIPT_BIN = Path(sys.executable).with_name("fal-persona")


def _ask(capsys, *argv):
    """(exit code, stdout, stderr) of `fal-persona ask ...`, in-process."""
    code = main(["ask", "--no-listen", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _reason(err: str) -> str:
    """The last stderr line: the one-line reason."""
    lines = err.strip().splitlines()
    assert lines, "no reason on stderr"
    assert lines[-1].startswith("fal-persona: ") and "Traceback" not in err
    return lines[-1]


def _script_run(args, tmp_path, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update({"FAL_PERSONA_HOME": str(tmp_path / "home"), "LANGSMITH_TRACING": "false", **env_extra})
    return subprocess.run([str(SCRIPT_BIN), "ask", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, stdin=subprocess.DEVNULL)


def test_the_codes_are_distinct():
    codes = [ask.EXIT_OK, ask.EXIT_USAGE, ask.EXIT_NOT_UNDERSTOOD, ask.EXIT_TOOL_FAILED, ask.EXIT_REJECTED,
             ask.EXIT_REFUSED, ask.EXIT_TURN_FAILED, ask.EXIT_TIMEOUT, ask.EXIT_SAVE_FAILED]
    assert len(set(codes)) == len(codes) and 1 not in codes and 130 not in codes


def test_ok_chain_exits_0_and_saves_the_image(capsys, tmp_path):
    code, out, err = _ask(capsys, "--json", "--yes", CHAIN)
    assert code == ask.EXIT_OK, err
    data = json.loads(out)
    assert data["exit_code"] == 0 and "error" not in data
    assert [c["name"] for c in data["tool_calls"]][-1] == "get_queue_result"
    [saved] = data["saved"]
    path = Path(saved["path"])
    assert saved["url"].startswith("http://127.0.0.1:") and path.parent == tmp_path / "home" / "media"
    assert path.stat().st_size > 0


def test_plain_output_prints_each_saved_path_after_the_answer(capsys, tmp_path):
    code, out, err = _ask(capsys, "--yes", "--save", str(tmp_path / "out"), CHAIN)
    assert code == 0, err
    last = Path(out.strip().splitlines()[-1])
    assert last.parent == tmp_path / "out" and last.is_file() and last.suffix == ".png"
    assert "Here is what I did" in out


def test_no_save_downloads_nothing(capsys, tmp_path):
    code, out, _ = _ask(capsys, "--json", "--yes", "--no-save", CHAIN)
    assert code == 0 and json.loads(out)["saved"] == []
    assert not (tmp_path / "home" / "media").exists()


def test_saved_image_outlives_the_process(tmp_path):
    from PIL import Image

    proc = _script_run(["--json", "--yes", CHAIN], tmp_path)
    assert proc.returncode == 0, proc.stderr
    [saved] = json.loads(proc.stdout)["saved"]
    path = Path(saved["path"])  # the sandbox that served it is gone with the process
    assert path.is_file() and path.stat().st_size > 0
    assert path.is_relative_to(tmp_path / "home" / "media")
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 0 and img.size[1] > 0


def test_save_failure_exits_9_and_still_prints_the_answer(capsys, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    code, out, err = _ask(capsys, "--yes", "--save", str(blocker), CHAIN)
    assert code == ask.EXIT_SAVE_FAILED
    assert "Here is what I did" in out
    reason = _reason(err)
    assert "could not save http://127.0.0.1:" in reason
    assert err.count("could not save") == 1


def test_save_failure_in_json(capsys, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    code, out, _ = _ask(capsys, "--json", "--yes", "--save", str(blocker), CHAIN)
    data = json.loads(out)
    assert code == data["exit_code"] == ask.EXIT_SAVE_FAILED
    [saved] = data["saved"]
    assert "path" not in saved and "could not save" in saved["error"] and data["answer"]


def test_not_understood_exits_3(capsys):
    code, out, err = _ask(capsys, "blorp zzkx quux")
    assert code == ask.EXIT_NOT_UNDERSTOOD
    assert "did not understand" in out
    assert "not understood" in _reason(err) and "blorp zzkx quux" in _reason(err)


def test_a_reference_nothing_resolves_is_not_understood(capsys):
    code, _, err = _ask(capsys, "status it")
    assert code == ask.EXIT_NOT_UNDERSTOOD and "request id" in _reason(err)


def test_help_is_ok(capsys):
    code, out, _ = _ask(capsys, "help")
    assert code == 0 and "offline planner" in out


def test_404_exits_4(capsys):
    code, out, err = _ask(capsys, "--json", f"status {EP} {MISSING}")
    assert code == ask.EXIT_TOOL_FAILED
    data = json.loads(out)
    assert data["exit_code"] == 4 and "NotFoundError" in data["tool_calls"][0]["error"]
    reason = _reason(err)
    assert "get_queue_status failed" in reason and "404" in reason and reason == f"fal-persona: {data['error']}"


def test_rejected_approval_exits_5(capsys):
    code, out, err = _ask(capsys, "--json", "--no-approve", f'submit {EP} prompt "a red fox"')
    assert code == ask.EXIT_REJECTED
    data = json.loads(out)
    assert data["spent_usd"] == 0 and "Rejected" in data["tool_calls"][0]["error"]
    assert "approval rejected" in _reason(err) and "submit_queue_request" in _reason(err)


def test_persona_refusal_exits_6(capsys):
    code, out, err = _ask(capsys, "--persona", "analyst", "--yes", f'submit {EP} prompt "a red fox"')
    assert code == ask.EXIT_REFUSED
    assert "may not use submit_queue_request" in out
    reason = _reason(err)
    assert "refused" in reason and "analyst" in reason


def test_guard_refusal_of_a_model_call_outside_the_scope_exits_6(capsys, monkeypatch):
    script = [calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": "x"}})),
              text("I could not submit.")]
    with ScriptedOpenAI(script) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        code, out, err = _ask(capsys, "--json", "--persona", "analyst", "--yes", "make a fox")
    assert code == ask.EXIT_REFUSED, err
    assert "refused" in _reason(err) and json.loads(out)["spent_usd"] == 0


def test_timeout_exits_8(capsys):
    code, out, err = _ask(capsys, "--json", "--yes", "--timeout", "0.3",
                          f'submit {EP} prompt "a red fox" then watch it then result')
    assert code == ask.EXIT_TIMEOUT
    assert json.loads(out)["exit_code"] == ask.EXIT_TIMEOUT
    assert "timed out after 0.3 s" in _reason(err)


def test_turn_failure_exits_7(capsys, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("FAL_PERSONA_LLM_MAX_RETRIES", "0")
    code, _, err = _ask(capsys, "search flux")
    assert code == ask.EXIT_TURN_FAILED and "turn failed" in _reason(err)


@pytest.mark.parametrize("argv", [["ask", "--timeout", "-1", "x"], ["ask", "--timeout", "soon", "x"],
                                  ["ask", "--save", "d", "--no-save", "x"], ["ask", "--yes", "--no-approve", "x"],
                                  ["ask"]])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == ask.EXIT_USAGE and capsys.readouterr().err


def test_unknown_persona_exits_2(capsys):
    code, _, err = _ask(capsys, "--persona", "nobody", "help")
    assert code == ask.EXIT_USAGE and "nobody" in _reason(err)


def test_401_without_fal_key_does_not_say_unset_it(capsys, monkeypatch):
    """A keyless live run (base URLs set, no FAL_KEY): the hint must not say to unset FAL_KEY."""
    from sandbox.server import start_in_thread

    sandbox = start_in_thread()
    try:
        monkeypatch.setenv("FAL_QUEUE_BASE_URL", sandbox.url)
        monkeypatch.setenv("FAL_API_BASE_URL", f"{sandbox.url}/v1")
        monkeypatch.setenv("FAL_JWKS_URL", f"{sandbox.url}/.well-known/jwks.json")
        code, out, err = _ask(capsys, "--json", f"price {EP}")
    finally:
        sandbox.stop()
    assert code == ask.EXIT_TOOL_FAILED, err
    data = json.loads(out)
    error = data["tool_calls"][0]["error"]
    assert "AuthError" in error and "401" in error and data["mode"] == "live"
    assert "unset it" not in error and "If FAL_KEY is set" in error and "if it is not set, set it" in error
