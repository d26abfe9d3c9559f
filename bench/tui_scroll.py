"""A 2,000-message session: load, scroll and per-keypress typing latency, side by side for
the default chat (newest 120 messages mounted, older ones folded) and an uncapped chat (every
message mounted), in one run. Headless via App.run_test; a stub runtime that never answers.
Run: .venv/bin/python bench/tui_scroll.py [messages]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from types import SimpleNamespace

# bench/agent.py would shadow the `agent` package: import from the repository root instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

from agent.tui.app import FalPersonaApp  # noqa: E402 - after the sys.path fix above
from agent.tui.chat import AnswerMessage, NoticeMessage, UserMessage  # noqa: E402 - after the sys.path fix above
from agent.tui.keys import DEFAULT_KEYS  # noqa: E402 - after the sys.path fix above
from agent.tui.toolcard import ToolCard  # noqa: E402 - after the sys.path fix above


class _Runtime:
    """A runtime that never answers: the members of agent.core.contracts.SessionRuntime."""

    mode, model_name, personas, transcript = "sandbox", "stub", {}, None
    sandbox_url, listener = None, None

    def __init__(self) -> None:
        self.notices: list[str] = []
        self.runner = SimpleNamespace(persona=SimpleNamespace(name="bench", tools=(), budget_usd=5.0),
                                      spent_usd=0.0, budget_left_usd=5.0, session_id="bench",
                                      history=[], model_name="stub")

    def switch_persona(self, name: str):
        return self.runner

    def new_session(self):
        return self.runner

    async def aclose(self) -> None:
        pass


async def _factory(settings, persona):
    return _Runtime()


def _message(i: int):
    kind = i % 4
    if kind == 0:
        return UserMessage(f"message {i}: search text-to-image then price the first one")
    if kind == 1:
        card = ToolCard(f"c{i}", "search_models", {"query": "text-to-image", "limit": 10})
        return card
    if kind == 2:
        return AnswerMessage(f"Answer **{i}**: `fal-ai/flux/dev` costs $0.025 per image.\n\n- one\n- two")
    return NoticeMessage(f"notice {i}")


async def run_case(n: int, max_mounted: int) -> dict[str, float]:
    app = FalPersonaApp(runtime_factory=_factory, settings=SimpleNamespace(uses_offline_planner=True),
                        keys=dict(DEFAULT_KEYS), max_mounted=max_mounted, history_path=None)
    app.animation_level = "none"  # time the work, not the smooth-scroll animation
    async with app.run_test(size=(120, 40)) as pilot:
        while app.runtime is None:
            await pilot.pause(0.01)
        t0 = time.perf_counter()
        for i in range(n):
            widget = await app.chat.add(_message(i))
            if isinstance(widget, ToolCard):
                widget.finish("12 models found", {"models": []}, False, 0.1)
        await pilot.pause()
        load = time.perf_counter() - t0
        chat = app.chat
        scrolls = []
        for _ in range(10):
            for key in ("pageup", "pageup", "pagedown"):
                chat.focus()
                t = time.perf_counter()
                await pilot.press(key)
                await pilot.pause()
                scrolls.append(time.perf_counter() - t)
        prompt = app.query_one("#prompt")
        prompt.focus()
        keys = []
        for ch in "a cat in a hat, watercolour, soft light":
            t = time.perf_counter()
            await pilot.press(ch if ch != " " else "space")
            await pilot.pause()
            keys.append(time.perf_counter() - t)
        mounted = len(chat.messages)
    return {"load": load, "scroll_med": statistics.median(scrolls), "scroll_max": max(scrolls),
            "key_med": statistics.median(keys), "key_max": max(keys), "mounted": mounted}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    empty = asyncio.run(run_case(0, 120))
    capped = asyncio.run(run_case(n, 120))
    uncapped = asyncio.run(run_case(n, 10**9))
    print(f"{n} messages (user, tool card, Markdown answer, notice in turn), 120x40 headless;")
    print("latencies include the pilot's own wait-for-idle; the empty chat is that baseline")
    print(f"{'':24}{'empty chat':>12}{'capped (default)':>18}{'uncapped':>12}{'capped/empty':>14}")
    for key, label, unit in (("mounted", "widgets mounted", ""), ("load", "load all (s)", "s"),
                             ("scroll_med", "scroll key median (ms)", "ms"),
                             ("scroll_max", "scroll key max (ms)", "ms"),
                             ("key_med", "keypress median (ms)", "ms"),
                             ("key_max", "keypress max (ms)", "ms")):
        e, a, b = empty[key], capped[key], uncapped[key]
        scale = 1000 if unit == "ms" else 1
        ratio = f"{a / e:.2f}x" if e else "-"
        fe, fa, fb = (f"{v * scale:.1f}" if key != "mounted" else f"{v:.0f}" for v in (e, a, b))
        print(f"{label:24}{fe:>12}{fa:>18}{fb:>12}{ratio:>14}")


if __name__ == "__main__":
    main()
