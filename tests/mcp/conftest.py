"""Helpers for the MCP tests: `fal-persona mcp` spawned over stdio or HTTP (bounded waits,
killed at teardown), a persona file that uses the test's own notes server, the transcript."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))  # scripted_openai

NOTES_SERVER = Path(__file__).with_name("notes_server.py")
CLIENT_NAME = "fal-persona-tests"
WAIT_S = 60.0


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a spawned `fal-persona`: no keys, the test's data dir."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FAL_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FAL_QUEUE_BASE_URL", "FAL_API_BASE_URL")}
    env.update({"FAL_PERSONA_HOME": str(home), "LANGSMITH_TRACING": "false", **extra})
    return env


@contextlib.asynccontextmanager
async def stdio_session(home: Path, *args: str, elicitation: Any = None) -> AsyncIterator[Any]:
    """An initialised official-SDK ClientSession to `python -m agent.cli mcp ARGS` over stdio."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp.types import Implementation

    params = StdioServerParameters(command=sys.executable, args=["-m", "agent.cli", "mcp", *args],
                                   env=child_env(home), cwd=str(Path(__file__).resolve().parents[2]))
    errlog = (home.parent / "mcp-server-stderr.log").open("a", encoding="utf-8")
    try:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, client_info=Implementation(name=CLIENT_NAME, version="1"),
                                     elicitation_callback=elicitation) as session:
                await session.initialize()
                yield session
    finally:
        errlog.close()


class HttpServer:
    """`python -m agent.cli mcp --transport http --port 0 ...`, its URL read from its stderr."""

    def __init__(self, home: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "mcp", "--transport", "http", "--port", "0", *args],
            env=child_env(home), cwd=str(Path(__file__).resolve().parents[2]),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_url()
        self.token = self.wait_line(r"^fal-persona: token: (\S+)") if "--require-token" in args else None

    def wait_line(self, pattern: str) -> str:
        """The first group of the next stderr line that matches `pattern` (bounded wait)."""
        while True:
            try:
                line = self.lines.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"fal-persona mcp printed no line like {pattern!r} in time") from None
            if line is None:
                raise AssertionError("fal-persona mcp exited: " + "".join(self.stderr))
            found = re.search(pattern, line)
            if found:
                return found.group(1)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _wait_url(self) -> str:
        try:
            return self.wait_line(r"at (http://\S+/mcp)")
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.asynccontextmanager
async def http_session(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Any]:
    """An initialised official-SDK ClientSession over streamable HTTP."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client
    from mcp.types import Implementation

    async with streamablehttp_client(url, headers=headers) as (read, write, _):
        async with ClientSession(read, write, client_info=Implementation(name=CLIENT_NAME, version="1")) as session:
            await session.initialize()
            yield session


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The data dir the in-process code and the spawned commands share."""
    path = tmp_path / "home"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def http_server(home: Path) -> Iterator[Any]:
    """A factory of HTTP servers; each is stopped at teardown."""
    started: list[HttpServer] = []

    def start(*args: str) -> HttpServer:
        server = HttpServer(home, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def write_persona(home: Path, name: str, body: str) -> Path:
    """A persona file in the user's persona dir."""
    folder = home / "personas"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(body, encoding="utf-8")
    return path


def scribe_persona(home: Path, notes_file: Path, *, extra_servers: str = "", approval: str = '["save_*"]',
                   pid_file: Path | None = None) -> Path:
    """A persona with every fal tool and the notes server (`notes_save_note` asks approval)."""
    env = f'NOTES_FILE = "{notes_file}"' + (f', NOTES_PID_FILE = "{pid_file}"' if pid_file else "")
    return write_persona(home, "scribe", f'''
description = "Makes images and keeps notes about them"
budget_usd = 1.0
tools = ["*"]
system_prompt = "You make images with fal.ai and save notes about them."

[[mcp_servers]]
name = "notes"
command = "{sys.executable}"
args = ["{NOTES_SERVER}"]
env = {{ {env} }}
tools = ["save_note", "read_notes", "crash", "refuse"]
approval = {approval}
start_timeout_s = 30
{extra_servers}''')


def transcript_sessions(home: Path, source: str) -> list[dict[str, Any]]:
    """Every transcript session of `source`, with its event count."""
    from agent import locations
    from agent.transcript.store import TranscriptStore

    assert locations.home() == home
    store = TranscriptStore(locations.transcript_db())
    try:
        return [s for s in store.list_sessions(limit=100) if s["source"] == source]
    finally:
        store.close()


def transcript_events(home: Path, source: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(session, its events) for every transcript session of `source` that has events."""
    from agent import locations
    from agent.transcript.store import TranscriptStore

    assert locations.home() == home
    store = TranscriptStore(locations.transcript_db())
    try:
        return [(s, store.events(s["id"])) for s in store.list_sessions(limit=100) if s["source"] == source and s["events"]]
    finally:
        store.close()


def results_logged(home: Path, source: str, calls: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """`transcript_events` once `calls` calls have their result (or error) row. A running MCP
    server commits a call's rows just after its reply (agent/mcp/record.py), so this polls,
    bounded by WAIT_S; after that it returns what there is, for the test's asserts to show."""
    deadline = time.monotonic() + WAIT_S
    while True:
        got = transcript_events(home, source)
        done = sum(e["kind"] in ("tool_result", "tool_error") for _, events in got for e in events)
        if done >= calls or time.monotonic() > deadline:
            return got
        time.sleep(0.02)
