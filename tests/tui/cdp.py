"""A small Chrome DevTools Protocol client for driving headless Chromium from tests.

Only what the web tests use: open a tab, run JavaScript, type, screenshot. Every wait is
bounded; `Chromium.close` ends the browser's whole process group (it was started in its own).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

# xterm.js keeps its screen in a canvas; textual.js does not expose the Terminal object. This
# runs before the page's scripts and records every object assigned to a `.terminal` property
# that looks like an xterm Terminal, so tests can read the real screen buffer.
CAPTURE_TERMINAL_JS = """
(() => {
  window.__terms = [];
  Object.defineProperty(Object.prototype, "terminal", {
    configurable: true,
    get() { return undefined; },
    set(value) {
      Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
      if (value && value.buffer && value.buffer.active) window.__terms.push(value);
    },
  });
})();
"""

SCREEN_TEXT_JS = """
(() => {
  const t = window.__terms[0];
  if (!t) return null;
  const b = t.buffer.active, rows = [];
  for (let i = 0; i < t.rows; i++) {
    const line = b.getLine(b.viewportY + i);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\\n");
})()
"""


def chromium_binary() -> str | None:
    """The Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    """A DevTools call failed or timed out."""


class Chromium:
    """Headless Chromium with one browser-level DevTools websocket."""

    def __init__(self, binary: str, profile: Path, width: int = 1280, height: int = 800) -> None:
        self.binary, self.profile, self.size = binary, profile, (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Launch and connect; the port comes from the profile's DevToolsActivePort file."""
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)  # a stale one would point at a dead browser
        args = [self.binary, "--headless=new", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={self.profile}", f"--window-size={self.size[0]},{self.size[1]}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update", "--disable-default-apps",
                "--password-store=basic", "--use-mock-keychain", "--disable-gpu",
                "--disable-crash-reporter", "--disable-breakpad", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # HOME too: Chromium keeps crash reports and caches under ~/.config and ~/.cache.
        env = dict(os.environ, HOME=str(self.profile), XDG_CONFIG_HOME=str(self.profile / "config"),
                   XDG_CACHE_HOME=str(self.profile / "cache"))
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while True:
            text = port_file.read_text() if port_file.exists() else ""
            if text.count("\n") >= 1 and text.split("\n")[1]:
                port, path = text.split("\n")[:2]
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise CdpError(f"chromium did not start (exit {self.proc.poll()})")
            await asyncio.sleep(0.05)
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0,
                                               timeout=aiohttp.ClientWSTimeout(ws_close=5))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CdpError("devtools connection closed"))

    async def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
                   timeout: float = 15.0) -> dict[str, Any]:
        """One DevTools command; its `result`, or CdpError."""
        assert self._ws is not None
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        body: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            body["sessionId"] = session
        await self._ws.send_str(json.dumps(body))
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise CdpError(f"{method} timed out after {timeout}s") from None
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def new_page(self, url: str) -> Page:
        """A new tab with the terminal capture installed, navigated to `url`."""
        target = (await self.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.call("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self, session, target)
        await self.call("Page.enable", session=session)
        await self.call("Page.addScriptToEvaluateOnNewDocument", {"source": CAPTURE_TERMINAL_JS}, session=session)
        await self.call("Page.navigate", {"url": url}, session=session)
        return page

    async def close(self) -> None:
        """Disconnect and end every Chromium process (its own process group)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)
        if self._http is not None:
            await self._http.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None:
            try:  # helpers (renderer, zygote) may outlive the main process briefly
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 15  # SIGKILL is delivered asynchronously
            while self.group_left() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    def group_left(self) -> list[int]:
        """The browser's processes still running (zombies excluded): its process group, and its
        crash handlers, which leave the group but name the profile dir (it is their HOME)."""
        if self.proc is None:
            return []
        left, profile = [], str(self.profile).encode()
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
                fields = stat[stat.rfind(")") + 2:].split()
                if not fields or fields[0] == "Z":
                    continue
                if int(fields[2]) == self.proc.pid or profile in (entry / "cmdline").read_bytes():
                    left.append(int(entry.name))
            except OSError:
                continue
        return left


class Page:
    """One tab, driven through its flattened DevTools session."""

    def __init__(self, browser: Chromium, session: str, target: str) -> None:
        self.browser, self.session, self.target = browser, session, target

    async def evaluate(self, expression: str, timeout: float = 15.0) -> Any:
        """Run JavaScript in the page; its JSON value."""
        result = await self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                         session=self.session, timeout=timeout)
        if "exceptionDetails" in result:
            raise CdpError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def screen_text(self) -> str:
        """The terminal's visible rows, as xterm.js holds them ('' before it exists)."""
        return await self.evaluate(SCREEN_TEXT_JS) or ""

    async def wait_for_text(self, needle: str | Callable[[str], bool], timeout: float) -> str:
        """Poll the screen until `needle` shows (or, a callable, holds of the screen text); the
        screen text, or CdpError with what was there."""
        test = needle if callable(needle) else (lambda text: needle in text)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.screen_text()
            if test(text):
                return text
            await asyncio.sleep(0.2)
        raise CdpError(f"{needle!r} not on screen after {timeout}s; screen was:\n{text}")

    async def wait_settled(self, timeout: float, quiet: float = 0.6) -> str:
        """The screen once it has stopped changing for `quiet` seconds (a scroll animates over
        several frames); CdpError if it keeps changing for `timeout`."""
        deadline = time.monotonic() + timeout
        text, since = await self.screen_text(), time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            now = await self.screen_text()
            if now != text:
                text, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return text
        raise CdpError(f"the screen kept changing for {timeout}s")

    async def type(self, text: str) -> None:
        """Focus the terminal and type `text` as the keyboard would (Enter for a newline)."""
        await self.evaluate("window.__terms[0].focus()")
        chunks = text.split("\n")
        for i, chunk in enumerate(chunks):
            if chunk:
                await self.browser.call("Input.insertText", {"text": chunk}, session=self.session)
            if i < len(chunks) - 1:
                await self.press_enter()

    async def press_enter(self) -> None:
        """A real Enter key press."""
        await self.press("Enter", 13, text="\r")

    async def press(self, key: str, key_code: int, text: str | None = None) -> None:
        """A real key press (keydown, with its text if it types one, then keyup)."""
        info = {"key": key, "code": key, "windowsVirtualKeyCode": key_code, "nativeVirtualKeyCode": key_code}
        down = {"type": "keyDown", **info, "text": text} if text else {"type": "rawKeyDown", **info}
        await self.browser.call("Input.dispatchKeyEvent", down, session=self.session)
        await self.browser.call("Input.dispatchKeyEvent", {"type": "keyUp", **info}, session=self.session)

    async def wheel(self, x: int, y: int, delta_y: int) -> None:
        """A mouse-wheel turn over the page point (x, y); negative `delta_y` scrolls up."""
        await self.browser.call("Input.dispatchMouseEvent", {"type": "mouseWheel", "x": x, "y": y,
                                                             "deltaX": 0, "deltaY": delta_y}, session=self.session)

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the tab."""
        data = (await self.browser.call("Page.captureScreenshot", {"format": "png"}, session=self.session))["data"]
        path.write_bytes(base64.b64decode(data))
        return path
