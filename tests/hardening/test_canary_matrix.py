"""Issue 12.1: canary FAL and OpenAI keys, each with every control character, through every
channel; then everything written is scanned for every form of either key. 0 occurrences.

A key holding a control character inside is refused at start (the message names the variable,
never the value); one with surrounding whitespace is stripped and used. Each usable variant
runs `ask` and `ask --json` (as the console script) against the sandbox and a scripted
OpenAI-compatible model that does everything a leak needs: puts the keys (raw, escaped,
URL-encoded, base64) in a submit's prompt (the sandbox echoes it in the result), asks for a
status with a key as the request id (an error that quotes it), and answers with the keys in
every form. A TUI session does the same on screen. Scanned: stdout, stderr, every file in the
data dir (transcript database and WAL, log files, media), `logs export` as jsonl and md, and
every request body the model server received.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from sandbox.config import SandboxConfig
from sandbox.server import start_in_thread
from tests.agent.scripted_openai import ScriptedOpenAI, call, calls, text

FAL = "fal-CANARYid0042:CANARYsecret0042abcdef9876"
OPENAI = "sk-CANARYopenai-0042-abcdefghijklmnop"
EP = "fal-ai/flux/schnell"
BIN = Path(sys.executable).with_name("fal-persona")
USABLE = {"clean": ("", ""), "trailing-newline": ("", "\n"), "trailing-cr": ("", "\r"),
          "trailing-tab": ("\t", "\t")}
INNER = {"embedded-newline": "\n", "embedded-cr": "\r", "embedded-tab": "\t"}


def _b64_cores(key: str) -> list[str]:
    """What a base64 text holding `key` at byte offset 0, 1 or 2 always contains (both alphabets):
    the 4-character groups that encode only bytes of the key."""
    out = []
    raw = key.encode()
    for offset in range(3):
        blob = base64.b64encode(b"." * offset + raw + b"...").decode()
        first = -(-offset // 3) * 4  # the first group made of key bytes only
        last = (offset + len(raw)) // 3 * 4
        core = blob[first:last]
        out += [core, core.replace("+", "-").replace("/", "_")]
    return out


def forms(key: str) -> dict[str, str]:
    """Every form of `key` the scan looks for, by name (written here, not taken from the redactor)."""
    found = {"raw": key, "repr": repr(key)[1:-1], "json": json.dumps(key)[1:-1],
             "quote": quote(key, safe=""), "quote-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(),
                                                                 quote(key, safe="")),
             "quote_plus": quote_plus(key), "b64-whole": base64.b64encode(key.encode()).decode().rstrip("=")}
    for i, core in enumerate(_b64_cores(key)):
        found[f"b64-offset{i // 2}{'-urlsafe' if i % 2 else ''}"] = core
    if ":" in key:
        for n, half in enumerate(key.split(":", 1)):
            found[f"half{n}"] = half
            found[f"half{n}-quote"] = quote(half, safe="")
            for i, core in enumerate(_b64_cores(half)):
                found[f"half{n}-b64-offset{i // 2}{'-urlsafe' if i % 2 else ''}"] = core
    return found


FORMS = {f"FAL_KEY {k}": v for k, v in forms(FAL).items()} | {f"OPENAI_API_KEY {k}": v for k, v in forms(OPENAI).items()}


def leaks(blob: bytes | str, where: str) -> list[str]:
    """Every form found in `blob` (as bytes, UTF-8 or UTF-16), named with `where`."""
    data = blob if isinstance(blob, bytes) else blob.encode("utf-8", "surrogatepass")
    return [f"{where}: {name}" for name, form in FORMS.items()
            if form.encode() in data or form.encode("utf-16-le") in data]


def scan_dir(root: Path) -> list[str]:
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out += leaks(path.read_bytes(), str(path.relative_to(root)))
    return out


def scan_requests(llm: ScriptedOpenAI) -> list[str]:
    out = []
    for i, body in enumerate(llm.requests):
        out += leaks(json.dumps(body), f"model request {i}") + leaks(json.dumps(body, ensure_ascii=False),
                                                                      f"model request {i}")
    return out


def _answer_with_every_form() -> str:
    fal_secret = FAL.split(":", 1)[1]
    return (f"Done. Your keys: {FAL} and {OPENAI}; escaped {FAL!r} {json.dumps(OPENAI)}; "
            f"URL {quote(FAL, safe='')} {quote_plus(OPENAI)}; base64 {base64.b64encode(FAL.encode()).decode()} "
            f"x{base64.b64encode(('Basic ' + OPENAI).encode()).decode()}; half {fal_secret}.")


def leaky_script() -> list:
    """Submit with the keys in the prompt, follow it, read a status with a key as the id, fetch
    the result (which echoes the prompt), then answer with every form of both keys."""
    prompt = f"a fox {FAL} {quote(OPENAI)} {base64.b64encode(FAL.encode()).decode()}"

    def rid(body: dict) -> str:
        hit = re.search(r"request_id: ([0-9a-f-]{36})", json.dumps(body))
        return hit.group(1) if hit else "00000000-0000-0000-0000-000000000000"

    return [
        calls(call("submit_queue_request", {"endpoint_id": EP, "arguments": {"prompt": prompt}})),
        lambda body: calls(call("stream_queue_status", {"endpoint_id": EP, "request_id": rid(body), "timeout_s": 30}),
                           call("get_queue_status", {"endpoint_id": EP, "request_id": repr(FAL + "\n")})),
        lambda body: calls(call("get_queue_result", {"endpoint_id": EP, "request_id": rid(body)}),
                           call("get_queue_status", {"endpoint_id": EP, "request_id": quote(OPENAI, safe="")})),
        text(_answer_with_every_form()),
    ]


@pytest.fixture
def box():
    sb = start_in_thread(host="127.0.0.1", port=0, config=SandboxConfig(speed=20.0, queue_delay_s=0.1))
    try:
        yield sb
    finally:
        sb.stop()


def _env(home: Path, fal_key: str, openai_key: str, sandbox_url: str = "", llm_url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAL_", "OPENAI_"))}
    env.update(FAL_PERSONA_HOME=str(home), LANGSMITH_TRACING="false", FAL_KEY=fal_key, OPENAI_API_KEY=openai_key,
               FAL_PERSONA_LLM_MAX_RETRIES="0", FAL_PERSONA_LOG_LEVEL="DEBUG")
    if sandbox_url:
        env.update(FAL_QUEUE_BASE_URL=sandbox_url, FAL_API_BASE_URL=sandbox_url + "/v1",
                   FAL_JWKS_URL=sandbox_url + "/.well-known/jwks.json")
    if llm_url:
        env["OPENAI_BASE_URL"] = llm_url
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, env=env, cwd=cwd, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("char", list(INNER.values()), ids=list(INNER))
@pytest.mark.parametrize("variable", ["FAL_KEY", "OPENAI_API_KEY"])
def test_a_key_with_an_inner_control_character_is_refused_and_never_shown(variable, char, tmp_path):
    home = tmp_path / "home"
    bad = {"FAL_KEY": FAL.replace(":", ":" + char[0], 1) if variable == "FAL_KEY" else FAL,
           "OPENAI_API_KEY": OPENAI.replace("-0042", char + "-0042", 1) if variable == "OPENAI_API_KEY" else OPENAI}
    env = _env(home, bad["FAL_KEY"], bad["OPENAI_API_KEY"], "http://127.0.0.1:9", "http://127.0.0.1:9/v1")
    found = []
    for args in (["ask", "--no-listen", "--json", "search flux"], ["ask", "--no-listen", "search flux"],
                 ["logs", "export", "--format", "md"], ["webhooks", "list", "--json"]):
        proc = _run(args, env, tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        err = proc.stderr.decode()
        assert f"{variable} holds a control character" in err, err
        found += leaks(proc.stdout, f"{args} stdout") + leaks(proc.stderr, f"{args} stderr")
    if home.exists():
        found += scan_dir(home)
    assert found == []


@pytest.mark.parametrize("variant", list(USABLE))
def test_ask_success_and_failure_paths_leave_no_form_of_either_key(variant, box, tmp_path):
    before, after = USABLE[variant]
    home = tmp_path / "home"
    found: list[str] = []
    for mode in (["--json"], []):
        with ScriptedOpenAI(leaky_script()) as llm:
            env = _env(home, before + FAL + after, before + OPENAI + after, box.url, llm.url)
            box.state.faults.add("server_error", ops=["status"], times=1, ingress=True)  # retried
            proc = _run(["ask", "--no-listen", "--yes", "--timeout", "90", *mode, "make me a fox"], env, tmp_path)
            out, err = proc.stdout.decode(), proc.stderr.decode()
            assert "Done. Your keys:" in out and "[REDACTED]" in out, err
            assert proc.returncode == 4, err  # the status with a key for an id failed, and says so
            assert len(llm.requests) == 4
            found += leaks(proc.stdout, f"ask {mode} stdout") + leaks(proc.stderr, f"ask {mode} stderr")
            found += scan_requests(llm)
        if mode:
            data = json.loads(out)
            names = [c["name"] for c in data["tool_calls"]]
            assert names[:2] == ["submit_queue_request", "stream_queue_status"], names
            assert "result" in data["tool_calls"][3] and data["saved"] and "path" in data["saved"][0]
    for fmt in ("jsonl", "md"):
        proc = _run(["logs", "export", "--format", fmt], _env(home, FAL, OPENAI), tmp_path)
        assert proc.returncode == 0 and b"submit_queue_request" in proc.stdout, proc.stderr
        found += leaks(proc.stdout, f"logs export {fmt}") + leaks(proc.stderr, f"logs export {fmt} stderr")
        target = tmp_path / f"export.{fmt}"
        proc = _run(["logs", "export", "--format", fmt, "--output", str(target)], _env(home, FAL, OPENAI), tmp_path)
        assert proc.returncode == 0 and target.stat().st_size > 0, proc.stderr
        found += leaks(target.read_bytes(), f"logs export --output {fmt}")
    assert (home / "transcript.sqlite3").stat().st_size > 0 and list((home / "media").iterdir())
    found += scan_dir(home)
    assert found == []


def test_sandbox_auth_errors_leave_no_form_of_the_key(tmp_path):
    key_id = FAL.split(":", 1)[0]
    sb = start_in_thread(host="127.0.0.1", port=0,
                         config=SandboxConfig(locked_key_ids=frozenset({key_id}),
                                              lock_reason=f"key {key_id} is locked ({FAL})"))
    home = tmp_path / "home"
    try:
        with ScriptedOpenAI(leaky_script()) as llm:
            proc = _run(["ask", "--no-listen", "--yes", "--json", "make me a fox"],
                        _env(home, FAL, OPENAI, sb.url, llm.url), tmp_path)
            found = leaks(proc.stdout, "stdout") + leaks(proc.stderr, "stderr") + scan_requests(llm)
    finally:
        sb.stop()
    data = json.loads(proc.stdout)
    assert proc.returncode == 4 and "LockedAccountError" in data["tool_calls"][0]["error"], proc.stderr
    assert "[REDACTED]" in data["tool_calls"][0]["error"]  # the sandbox did quote the key
    assert found + scan_dir(home) == []


@pytest.mark.parametrize("variant", ["clean", "trailing-newline"])
async def test_tui_session_shows_no_form_of_either_key(variant, box, tmp_path, monkeypatch):
    from agent.core.events import Decision
    from agent.core.runtime import build_runtime
    from agent.settings import Settings
    from agent.tui.app import FalPersonaApp
    from tests.tui.conftest import send, wait_for

    before, after = USABLE[variant]
    home = tmp_path / "home"
    with ScriptedOpenAI(leaky_script()) as llm:
        for name, value in _env(home, before + FAL + after, before + OPENAI + after, box.url, llm.url).items():
            if name.startswith(("FAL_", "OPENAI_")):
                monkeypatch.setenv(name, value)

        def factory(settings, persona):
            return build_runtime(Settings(FAL_PERSONA_LISTEN=False), persona, source="tui", user="t")

        app = FalPersonaApp(runtime_factory=factory)

        async def approve(request):
            return Decision(action="approve")

        app.approve = approve
        async with app.run_test(size=(140, 60)) as pilot:
            from agent.tui.chat import ErrorMessage

            await wait_for(pilot, lambda: app.runtime is not None or app.query(ErrorMessage), timeout=60,
                           what="runtime")
            assert app.runtime is not None, [str(w.content) for w in app.query(ErrorMessage)]
            await send(pilot, "make me a fox")
            await wait_for(pilot, lambda: app.turn_worker is not None and app.turn_worker.is_finished,
                           timeout=60, what="turn")
            await pilot.pause()
            screen = app.export_screenshot()
            widgets = "\n".join(str(getattr(w, "content", "")) + str(getattr(w, "renderable", ""))
                                for w in app.query("*"))
            assert "Done. Your keys:" in widgets and "[REDACTED]" in widgets
            await app.runtime.aclose()
        found = leaks(screen, "screen") + leaks(widgets, "widgets") + scan_requests(llm)
        assert len(llm.requests) == 4
    assert found + scan_dir(home) == []


def test_the_scan_finds_every_form_it_looks_for():
    planted = " | ".join(FORMS.values())
    assert len(leaks(planted, "planted")) == len(FORMS) > 40
    assert leaks(f"x{base64.b64encode(('ab' + FAL + 'z').encode()).decode()}", "b64 at offset 2")
    assert leaks("nothing to see here", "clean") == []
