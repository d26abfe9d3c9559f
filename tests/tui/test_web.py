"""`fal-persona web`: the real command on a loopback port, driven from headless Chromium.

The server runs as a subprocess (sandbox + offline planner, no keys, a temp data dir); the
browser's tabs are read through the DevTools protocol (the xterm.js screen buffer itself), and
a screenshot of each run is kept in the test's tmp dir. Every wait is bounded; at the end the
server, every tab's app and every Chromium process are gone.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from agent.tui import web, web_gate
from agent.tui.graphics import wants_graphics
from tests.tui.cdp import Chromium, chromium_binary

CHROMIUM = chromium_binary()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
pytestmark = pytest.mark.timeout(240)


# -- the server subprocess -----------------------------------------------------------------
def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def wait_until(condition, timeout: float, what: str):
    """Poll `condition()` until truthy; its value, or a failure naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@dataclass
class WebServer:
    """`fal-persona web --port 0` in its own process group, stdout read line by line."""

    tmp: Path
    flags: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    stdout: list[str] = field(default_factory=list)
    url: str = ""
    token: str | None = None
    apps_seen: set[int] = field(default_factory=set)

    def start(self) -> WebServer:
        self.stderr_path = self.tmp / "web-server.stderr"
        argv = [sys.executable, "-m", "agent.cli", "web", "--host", "127.0.0.1", "--port", "0", *self.flags]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr_path.open("w"),
                                     text=True, start_new_session=True, env=dict(os.environ))
        threading.Thread(target=self._pump, daemon=True).start()
        banner = self.next_line(30)
        match = re.search(r"open (http://127\.0\.0\.1:\d+/)(\?token=(\S+))?", banner)
        assert match, banner
        self.url, self.token = match.group(1), match.group(3)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def next_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output from fal-persona web in {timeout}s; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def apps(self) -> list[int]:
        """Live tab apps: the server's children running the TUI entry."""
        assert self.proc is not None
        found = [p for p in children_of(self.proc.pid) if web.CHILD_FLAG in cmdline(p)]
        self.apps_seen.update(found)
        return found

    def stop(self) -> int:
        """SIGTERM, as Ctrl+C would; the exit code. Every tab's app must be gone too."""
        assert self.proc is not None
        self.apps()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        wait_until(lambda: not any(alive(p) for p in self.apps_seen), 15, "the tab apps to end")
        return code

    def kill(self) -> None:
        """Teardown safety net: the whole process group, whatever state it is in."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    servers: list[WebServer] = []

    def start(*flags: str) -> WebServer:
        server = WebServer(tmp_path, flags).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
async def browser(tmp_path: Path):
    chromium = Chromium(CHROMIUM or "chromium", tmp_path / "chromium-profile")
    try:
        await chromium.start()
        yield chromium
    finally:
        await chromium.close()
        assert not chromium.group_left(), f"chromium processes left: {chromium.group_left()}"


def logs(*args: str) -> str:
    """`fal-persona logs ...` against the same data dir."""
    done = subprocess.run([sys.executable, "-m", "agent.cli", "logs", *args], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    return done.stdout


PROMPT = "Type a request, or /help"
BROKEN = ("could not start the agent", "the agent is not running", "Traceback")


async def answer(page, needle: str, timeout: float) -> str:
    """Wait for `needle` on the tab's screen; fail at once if the app says it could not start."""
    screen = await page.wait_for_text(lambda text: needle in text or any(b in text for b in BROKEN), timeout)
    assert needle in screen, f"the app failed before {needle!r} showed:\n{screen}"
    return screen


# -- tests ---------------------------------------------------------------------------------
@needs_chromium
async def test_each_tab_runs_its_own_tui_and_answers(start_server, browser, tmp_path: Path) -> None:
    server = start_server()
    assert server.token is None  # loopback: no token

    first = await browser.new_page(server.url)
    await first.wait_for_text(PROMPT, 60)
    await first.type("search flux\n")
    screen = await answer(first, "fal-ai/flux/dev | FLUX.1 [dev]", 90)
    assert 'search_models(query="flux")' in screen
    assert "sandbox" in screen.splitlines()[0]  # the header: no keys, so the local sandbox
    shot = await first.screenshot(tmp_path / "web-first-tab.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000

    second = await browser.new_page(server.url)
    await second.wait_for_text(PROMPT, 60)
    await second.type("price fal-ai/flux/schnell\n")
    other = await answer(second, "get_pricing", 90)
    assert "search_models" not in other and "search flux" not in other  # a fresh app, not a mirror
    await second.screenshot(tmp_path / "web-second-tab.png")
    assert "price fal-ai/flux/schnell" not in await first.screen_text()

    apps = await asyncio.to_thread(wait_until, lambda: len(server.apps()) == 2 and server.apps(), 15, "two apps")
    assert len(set(apps)) == 2

    # Two sessions in the transcript, each holding only its own tab's request.
    rows = [line.split()[0] for line in logs("list").splitlines()[1:] if line.strip()]
    assert len(rows) == 2, rows
    shown = {sid: logs("show", sid) for sid in rows}
    assert sorted("search flux" in text for text in shown.values()) == [False, True]
    assert sorted("price fal-ai/flux/schnell" in text for text in shown.values()) == [False, True]

    # Closing a tab ends its app and only its app.
    await browser.call("Target.closeTarget", {"targetId": first.target})
    remaining = await asyncio.to_thread(wait_until, lambda: len(server.apps()) == 1 and server.apps(), 30,
                                        "the closed tab's app to end")
    assert remaining[0] in apps
    assert "get_pricing" in await second.screen_text()

    assert await asyncio.to_thread(server.stop) == 0
    assert not any(alive(p) for p in server.apps_seen)


@needs_chromium
async def test_token_gate_on_every_request_and_only_in_the_banner(start_server, browser) -> None:
    server = start_server("--require-token")
    token = server.token
    assert token and len(token) >= 32
    base = server.url.rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for path in ("/", "/static/js/textual.js", "/ws", f"/?token={token}x", "/?token="):
            async with http.get(base + path) as resp:
                assert resp.status == 403, path
        async with http.get(f"{base}/?token={token}") as resp:
            assert resp.status == 200
            cookie = resp.cookies[web_gate.cookie_name(int(base.rsplit(":", 1)[1]))]
            assert cookie.value == token and cookie["httponly"] and cookie["samesite"] == "Strict"
        jar = {"Cookie": f"{cookie.key}={token}"}
        async with http.get(base + "/static/js/textual.js", headers=jar) as resp:
            assert resp.status == 200
        async with http.get(base + "/static/js/textual.js", headers={"Cookie": f"{cookie.key}=nope"}) as resp:
            assert resp.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(base + "/ws")
        assert refused.value.status == 403

    # A real tab opened from the banner's URL: the page's cookie authorises its websocket.
    page = await browser.new_page(f"{server.url}?token={token}")
    await page.wait_for_text(PROMPT, 60)
    assert len(await asyncio.to_thread(wait_until, server.apps, 15, "the tab's app")) == 1

    assert await asyncio.to_thread(server.stop) == 0
    out, err = "".join(server.stdout), server.stderr()
    assert out.count(token) == 1 and token in out.splitlines()[0]  # the banner, once
    assert token not in err and "GET / 200" in err.replace("aiohttp.access: ", "")  # access log, no query


async def test_loopback_refuses_other_host_names_and_cross_origin_websockets() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    app = web.WebApp("exit 1", port=1, token=None).build()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/")).status == 200
        assert (await client.get("/", headers={"Host": "rebound.example:8790"})).status == 403
        evil = {"Origin": "http://evil.example", "Host": "127.0.0.1:8790"}
        assert (await client.get("/ws", headers=evil)).status == 403
        page = await (await client.get("/", headers={"Host": "localhost:8790"})).text()
        assert 'data-session-websocket-url="ws://localhost:8790/ws"' in page  # built from the Host
        assert (await client.get("/static/js/textual.js")).status == 200


async def test_sessions_beyond_the_cap_are_refused() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    app = web.WebApp("exit 1", port=1, token=None, max_sessions=0).build()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/ws")
        assert resp.status == 503 and "sessions are open" in await resp.text()


async def test_token_gate_off_loopback_in_process() -> None:
    """The gate as a non-loopback bind gets it (served here on loopback: no public socket)."""
    from aiohttp.test_utils import TestClient, TestServer

    token = web.make_token("0.0.0.0", require_token=False)
    assert token and web.make_token("192.168.1.20", False) and web.make_token("::", False)
    assert web.make_token("127.0.0.1", False) is None and web.make_token("localhost", False) is None
    app = web.WebApp("exit 1", port=1, token=token).build()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/", headers={"Host": "box.lan:8790"})).status == 403
        ok = await client.get(f"/?token={token}", headers={"Host": "box.lan:8790"})
        assert ok.status == 200 and 'ws://box.lan:8790/ws' in await ok.text()


def test_children_draw_half_blocks_and_run_the_tui_entry() -> None:
    env = {"TERM": "xterm-kitty", "FAL_PERSONA_IMAGES": "graphics"}
    assert wants_graphics(env)
    web.prepare_child(env)
    assert not wants_graphics(env)
    argv = web.child_argv("producer", "ada", True, False)
    assert argv[:4] == [sys.executable, "-m", "agent.tui.web", web.CHILD_FLAG]
    assert argv[4:] == ["--persona", "producer", "--user", "ada", "--no-log", "--no-listen"]
    assert web.shell_command(["a b", "c"]) == "exec 'a b' c"


def test_bad_port_and_busy_port_are_clear_errors() -> None:
    with pytest.raises(web.WebError, match="0-65535"):
        web.serve("127.0.0.1", 70000)
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(web.WebError, match="cannot listen on 127.0.0.1"):
            web.serve("127.0.0.1", busy.getsockname()[1])


@needs_chromium
async def test_a_result_image_shows_as_half_blocks_in_the_browser(start_server, browser, tmp_path: Path) -> None:
    server = start_server()
    page = await browser.new_page(server.url)
    await page.wait_for_text(PROMPT, 60)
    await page.type('submit fal-ai/flux/schnell prompt "a red fox" then watch then result\n')
    await answer(page, "Approve: submit_queue_request", 90)
    await page.press_enter()  # the Approve button has focus

    def preview_shown(text: str, rows: int = 4) -> bool:  # half-block rows (a dialog border is one)
        return "Approve edited" not in text and sum(line.count("▀") >= 24 for line in text.splitlines()) >= rows

    # The preview shows while the turn goes on, and the chat then scrolls past it: waiting to
    # catch it on screen mid-turn is a race a loaded machine loses. So wait for the turn's end,
    # then wheel back up (a few lines a turn; a page up can jump over it) until it shows.
    await page.wait_for_text(lambda text: "get_queue_result" in text and PROMPT in text
                             and "I fetched the result" in text, 120)
    screen = await page.wait_settled(10)
    for _ in range(40):
        if preview_shown(screen, rows=12):
            break
        await page.wheel(400, 300, -120)  # over the chat column
        screen = await page.wait_settled(10)  # the scroll animates over several frames
    await page.screenshot(tmp_path / "web-image-tab.png")
    assert preview_shown(await page.screen_text(), rows=12), screen  # what the screenshot shows
    assert await asyncio.to_thread(server.stop) == 0


async def test_tab_apps_end_when_the_server_is_killed(start_server) -> None:
    """SIGKILL gives the server no chance to say quit: its children end on their own (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux-only")
    server = start_server()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.url + "ws?width=100&height=30")
        try:
            apps = await asyncio.to_thread(wait_until, server.apps, 30, "the session's app")
            # Wait until the app has drawn its runtime's header and gone idle: an idle app
            # writes nothing, so it would not notice a dead server by a broken pipe.
            seen = b""
            deadline = time.monotonic() + 60
            while b"offline planner" not in seen:
                msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                assert msg.type == aiohttp.WSMsgType.BINARY, msg
                seen += msg.data
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=10)
            await asyncio.to_thread(wait_until, lambda: not any(alive(p) for p in apps), 30,
                                    "the orphaned app to end")
        finally:
            await ws.close()
