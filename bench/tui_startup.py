"""Start-up of the chat TUI vs a bare Textual app (an App with one Input), side by side.

Each round starts a fresh interpreter per app (interleaved, so both see the same machine
state) and times process start -> a marker the app prints from its first refresh after mount,
i.e. when the screen is painted and the prompt accepts keys. For our app it also times the
runtime (LangChain, sandbox, offline planner) becoming ready, which happens after that paint.
Run: .venv/bin/python bench/tui_startup.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

BARE = r"""
import sys
from textual.app import App
from textual.widgets import Input
class Bare(App):
    def compose(self):
        yield Input()
    def on_mount(self):
        self.call_after_refresh(self.painted)
    def painted(self):
        print("PAINT", flush=True)
        self.exit()
Bare().run(headless=True)
"""

OURS = r"""
import sys
from agent.tui.app import FalPersonaApp
class Timed(FalPersonaApp):
    def _first_paint(self):
        print("PAINT", flush=True)
        super()._first_paint()
        self.set_interval(0.01, self._check)
    def _check(self):
        if self.ready.is_set():
            print("READY" if self.runtime is not None else "FAILED", flush=True)
            self.exit()
Timed().run(headless=True)
"""


def time_child(code: str, env: dict[str, str]) -> dict[str, float]:
    """Seconds from spawn to each marker line."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)
    marks: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        marks[line.strip()] = time.perf_counter() - start
    proc.wait(timeout=120)
    if "PAINT" not in marks:
        raise SystemExit(f"child produced no PAINT marker (exit {proc.returncode})")
    return marks


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items()
               if k not in ("FAL_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update(FAL_PERSONA_HOME=home, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        time_child(BARE, env), time_child(OURS, env)  # warm the OS file cache for both
        bare, ours, ready = [], [], []
        for _ in range(rounds):
            bare.append(time_child(BARE, env)["PAINT"])
            marks = time_child(OURS, env)
            ours.append(marks["PAINT"])
            ready.append(marks.get("READY", float("nan")))
    med = statistics.median
    print(f"rounds: {rounds} (interleaved; process start -> first paint with a usable input)")
    print(f"bare Textual app (App + Input): median {med(bare):.3f} s  min {min(bare):.3f} s")
    print(f"fal-persona TUI first paint:    median {med(ours):.3f} s  min {min(ours):.3f} s")
    print(f"ratio ours/bare (median):       {med(ours) / med(bare):.2f}x")
    print(f"goal: first paint <= 0.5 s -> {'met' if med(ours) <= 0.5 else 'NOT met'}")
    print(f"runtime ready (sandbox + offline planner, after paint): median {med(ready):.3f} s")


if __name__ == "__main__":
    main()
