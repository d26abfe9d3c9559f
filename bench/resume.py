"""Reopening a 2,000-message chat (`fal-persona --continue`) vs a bare Textual app, side by side.

A transcript is filled with one conversation of 500 turns, each a prompt, a tool call (every
tenth a submit whose job completed), its result and an answer: 2,000 messages. Each round
starts a fresh interpreter per app (interleaved) and times process start -> the first refresh
after the app painted the reopened history (the app as `fal-persona --continue` runs it:
the chat is painted straight from the transcript while the runtime with the sandbox and
offline planner is built; the time the agent holds the history is reported too), next to a bare
Textual app's first paint in the same run. Median of `rounds` (default 3).
Goal: the reopened chat painted within 1 s. Run: .venv/bin/python bench/resume.py [rounds]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TURNS = 500  # x 4 messages
GOAL_S = 1.0

BARE = r"""
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
Bare().run(headless=True, size=(160, 48))
"""

OURS = r"""
import agent.tui.resume as resume
from agent.tui.app import FalPersonaApp
painting = resume.paint_replay
async def timed(app, rebuilt):
    await painting(app, rebuilt)
    def painted():
        print(f"HISTORY {len(rebuilt.shown)} {len(app.chat.messages)} {app.chat.folded}", flush=True)
        app.set_interval(0.01, lambda: app.ready.is_set() and ready())
    def ready():
        print(f"READY {len(app.runner.history)}", flush=True)
        app.exit()
    app.call_after_refresh(painted)
resume.paint_replay = timed
class Timed(FalPersonaApp):
    def _first_paint(self):
        print("PAINT", flush=True)
        super()._first_paint()
Timed(resume=True).run(headless=True, size=(160, 48))
"""


def fill(home: str) -> str:
    """One 2,000-message conversation in `home`'s transcript; its session id."""
    os.environ["FAL_PERSONA_HOME"] = home
    sys.path.insert(0, str(ROOT))
    from agent.transcript.store import TranscriptStore

    store = TranscriptStore()
    sid = store.new_session("bench", "producer")
    who = {"user": "bench", "persona": "producer"}
    rows = []
    for i in range(TURNS):
        call_id = f"call_{i}"
        submit = i % 10 == 0
        rid = f"{i:08d}-0000-4000-8000-000000000000"
        name = "submit_queue_request" if submit else "search_models"
        args = ({"endpoint_id": "fal-ai/flux/schnell", "arguments": {"prompt": f"fox {i}"}} if submit
                else {"query": f"flux {i}"})
        rows.append(store.prepare(sid, "user_prompt", {"text": f"request number {i}: " + "words " * 12}, **who))
        rows.append(store.prepare(sid, "model_response", {"role": "ai", "content": "",
                                                          "tool_calls": [{"id": call_id, "name": name, "args": args}]}, **who))
        rows.append(store.prepare(sid, "tool_call", {"call_id": call_id, "name": name, "args": args,
                                                     "kind": "spend" if submit else "read"}, **who))
        artifact = ({"request_id": rid, "status": "IN_QUEUE"} if submit
                    else {"models": [{"endpoint_id": "fal-ai/flux/dev", "display_name": "FLUX.1 [dev]"}]})
        rows.append(store.prepare(sid, "tool_result", {"call_id": call_id, "name": name, "content": f"result {i}",
                                                       "artifact": artifact, **({"cost_usd": 0.003} if submit else {})},
                                  duration_s=0.2, **who))
        if submit:
            rows.append(store.prepare(sid, "job_state", {"request_id": rid, "endpoint_id": "fal-ai/flux/schnell",
                                                         "outcome": "completed", "status": "COMPLETED",
                                                         "summary": "done", "result": {"seed": i}}, **who))
        rows.append(store.prepare(sid, "model_response", {"role": "ai", "content": f"Answer {i}: " + "text " * 20}, **who))
        rows.append(store.prepare(sid, "answer", {"text": f"Answer {i}: " + "text " * 20}, **who))
    store.write([r for r in rows if r is not None])
    store.close()
    return sid


def time_child(code: str, env: dict[str, str]) -> dict[str, tuple[float, str]]:
    """Seconds from spawn to each marker line (and the rest of the line)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env, cwd=env["FAL_PERSONA_HOME"])
    marks: dict[str, tuple[float, str]] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        word, _, rest = line.strip().partition(" ")
        marks[word] = (time.perf_counter() - start, rest)
    proc.wait(timeout=120)
    if "PAINT" not in marks:
        raise SystemExit(f"child produced no PAINT marker (exit {proc.returncode})")
    return marks


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory() as home:
        fill(home)
        env = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update(FAL_PERSONA_HOME=home, PYTHONPATH=str(ROOT), LANGSMITH_TRACING="false")
        time_child(BARE, env), time_child(OURS, env)  # warm the OS file cache for both
        bare, ours, first, ready, detail = [], [], [], [], ""
        for _ in range(rounds):
            bare.append(time_child(BARE, env)["PAINT"][0])
            marks = time_child(OURS, env)
            if "HISTORY" not in marks:
                raise SystemExit("the app never painted the reopened chat")
            first.append(marks["PAINT"][0])
            ours.append(marks["HISTORY"][0])
            ready.append(marks["READY"][0] if "READY" in marks else float("nan"))
            detail = marks["HISTORY"][1] + " " + (marks["READY"][1] if "READY" in marks else "?")
    med = statistics.median
    shown, mounted, folded, history = detail.split()
    print(f"rounds: {rounds} (interleaved; process start -> painted; median of each)")
    print(f"chat: {TURNS * 4:,} messages ({shown} chat items); {mounted} widgets mounted, {folded} folded "
          f"into the 'earlier' line; the agent's rebuilt history: {history} messages")
    print(f"bare Textual app (App + Input) first paint:  median {med(bare):.3f} s  min {min(bare):.3f} s")
    print(f"fal-persona --continue, app's first paint:   median {med(first):.3f} s")
    print(f"fal-persona --continue, history painted:     median {med(ours):.3f} s  min {min(ours):.3f} s")
    print(f"ratio history painted / bare (median):       {med(ours) / med(bare):.2f}x")
    got = [r for r in ready if r == r]  # a round whose child ended before READY has nan
    print(f"runtime ready, the agent holding the history: median "
          f"{(med(got) if got else float('nan')):.3f} s (after the paint; {len(got)}/{rounds} rounds)")
    print(f"goal: reopened chat painted <= {GOAL_S:.1f} s -> {'met' if med(ours) <= GOAL_S else 'NOT met'}")


if __name__ == "__main__":
    main()
