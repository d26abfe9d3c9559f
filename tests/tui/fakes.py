"""A fake runtime that follows docs/contracts.md: scripted events, a real approver round-trip.

Commands it understands (a tiny version of the offline planner's grammar):
  search Q | price E | submit E prompt "..." | slow | boom | anything else (echo)
  animate | speak | transcribe: a finished job's result, a video (GIF), audio (WAV) or text
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.core.events import ApprovalRequest, Decision, ErrorEvent, Token, ToolEnd, ToolProgress, ToolStart, TurnEnd


def png_data_url(size: int = 16) -> str:
    """A small gradient PNG as a data: URL."""
    from PIL import Image

    img = Image.new("RGB", (size, size))
    img.putdata([(x * 16 % 256, y * 16 % 256, 128) for y in range(size) for x in range(size)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def gif_data_url(frames: int = 4, size: tuple[int, int] = (32, 24)) -> str:
    """A small animated GIF (a square moving right over a gradient), 250 ms a frame."""
    from PIL import Image, ImageDraw

    w, h = size
    shots = []
    for k in range(frames):
        img = Image.new("RGB", size)
        img.putdata([(x * 255 // w, 60, y * 255 // h) for y in range(h) for x in range(w)])
        ImageDraw.Draw(img).rectangle((4 + k * 6, 8, 11 + k * 6, 15), fill=(250, 220, 40))
        shots.append(img)
    buf = io.BytesIO()
    shots[0].save(buf, "GIF", save_all=True, append_images=shots[1:], duration=250, loop=0)
    return "data:image/gif;base64," + base64.b64encode(buf.getvalue()).decode()


def wav_bytes(seconds: float = 1.5, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV: a tone whose loudness swells twice, so the waveform has a shape."""
    import math
    import struct
    import wave

    n = int(seconds * rate)
    frames = b"".join(struct.pack("<h", int(20000 * abs(math.sin(math.pi * 2 * i / n))
                                            * math.sin(2 * math.pi * 440 * i / rate)))
                      for i in range(n))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buf.getvalue()


def wav_data_url() -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes()).decode()


TRANSCRIPT = "The quick brown fox jumps over the lazy dog, then naps in the afternoon sun."


def media_result(head: str) -> tuple[str, dict[str, Any]]:
    """(endpoint, result) of a finished job of the kind `head` names, as the sandbox shapes it."""
    if head == "animate":
        return "fal-ai/kling-video/v1/standard/image-to-video", {
            "video": {"url": gif_data_url(), "content_type": "image/gif", "file_size": 2048}, "seed": 7}
    if head == "speak":
        return "fal-ai/kokoro/american-english", {
            "audio": {"url": wav_data_url(), "content_type": "audio/wav", "duration": 1.5}}
    return "fal-ai/whisper", {"text": TRANSCRIPT, "chunks": [{"timestamp": [0.0, 2.5], "text": TRANSCRIPT}]}


@dataclass(frozen=True)
class FakePersona:
    name: str
    description: str = ""
    tools: tuple[str, ...] = ()
    budget_usd: float | None = 5.0


PERSONAS = {"producer": FakePersona("producer", "makes media"),
            "analyst": FakePersona("analyst", "reads prices, never spends")}


class FakeTranscript:
    """Records what the runner did; search and export over it."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.enabled = True

    def add(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        self.rows.append({"id": len(self.rows) + 1, "session_id": session_id, "ts": "2026-01-05T10:00:00",
                          "kind": kind, "persona": "producer", "data": data})

    def new_session(self, user: str, persona: str, source: str = "tui") -> str:
        return f"session-{len({r['session_id'] for r in self.rows}) + 1}"

    def record(self, session_id: str, kind: str, data: Mapping[str, Any], *, user: str | None,
               persona: str | None, duration_s: float | None = None,
               ref: str | None = None) -> int | None:
        self.add(session_id, kind, dict(data))
        return len(self.rows)

    def list_sessions(self, limit: int = 20) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for r in self.rows:
            seen.setdefault(r["session_id"], {"id": r["session_id"], "persona": r["persona"]})
        return list(seen.values())[-limit:][::-1]

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["session_id"] == session_id]

    def close(self) -> None:
        self.enabled = False

    def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]:
        q = query.lower().rstrip("*")
        return [r for r in reversed(self.rows) if q in str(r["data"]).lower()][:limit]

    def latest_conversation(self) -> str | None:
        prompted = [r["session_id"] for r in self.rows if r["kind"] == "user_prompt"]
        return prompted[-1] if prompted else None

    def resolve_session(self, prefix: str) -> str:
        from agent.transcript.store import TranscriptError

        ids = sorted({r["session_id"] for r in self.rows if r["session_id"].startswith(prefix)})
        if prefix in ids:
            return prefix
        if len(ids) != 1 or not prefix:
            raise TranscriptError(f"no single session {prefix!r}")
        return ids[0]

    def export(self, session_id: str | None = None, fmt: str = "jsonl") -> str:
        import json

        rows = [r for r in self.rows if session_id is None or r["session_id"] == session_id]
        if fmt == "md":
            return "\n".join(f"- **{r['kind']}** {r['data']}" for r in rows) + "\n"
        return "".join(json.dumps(r) + "\n" for r in rows)


class FakeRunner:
    """Yields scripted events; calls the approver for submits like the real runner does."""

    def __init__(self, persona: FakePersona, transcript: FakeTranscript, session_id: str) -> None:
        self.persona, self.transcript, self.session_id = persona, transcript, session_id
        self.spent_usd = 0.0
        self.budget_left_usd = 5.0
        self.model_name = "offline-planner"
        self.tool_calls: list[tuple[str, dict[str, Any]]] = []
        self.decisions: list[Decision] = []
        self.started = asyncio.Event()  # set when a `slow` turn is waiting
        self.cancelled = False
        self.history: list[Any] = []

    async def run_turn(self, text: str, approver: Any):
        self.transcript.add(self.session_id, "user_prompt", {"text": text})
        words = text.split()
        head = words[0].lower() if words else ""
        if head == "search":
            async for ev in self._tool("search_models", {"query": " ".join(words[1:])}):
                yield ev
            for piece in ["Found **2** models:", " `fal-ai/flux/dev`", " and `fal-ai/flux/schnell`."]:
                yield Token(piece)
            yield TurnEnd(answer="Found 2 models")
        elif head == "submit":
            async for ev in self._submit(words[1] if len(words) > 1 else "fal-ai/flux/dev", approver):
                yield ev
        elif head in ("animate", "speak", "transcribe"):
            endpoint, result = media_result(head)
            args = {"endpoint_id": endpoint, "request_id": f"req-{head}-0001"}
            async for ev in self._tool("get_queue_result", args, result):
                yield ev
            yield TurnEnd(answer="")
        elif head == "slow":
            yield Token("Thinking")
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        elif head == "boom":
            yield ErrorEvent("the model server answered 500; try again in a minute")
            yield TurnEnd(answer="")
        else:
            yield Token(f"You said: {text}")
            yield TurnEnd(answer=f"You said: {text}")

    async def run_tool(self, name: str, args: dict[str, Any], approver: Any):
        async for ev in self._tool(name, args):
            yield ev
        yield TurnEnd(answer="")

    async def _tool(self, name: str, args: dict[str, Any], artifact: Any = None):
        self.tool_calls.append((name, dict(args)))
        cid = f"call-{len(self.tool_calls)}"
        yield ToolStart(cid, name, args)
        await asyncio.sleep(0)
        artifact = artifact if artifact is not None else {"tool": name, "args": args, "ok": True}
        self.transcript.add(self.session_id, "tool_result", {"name": name, "args": args})
        yield ToolEnd(cid, name, f"{name} ok: {args}", artifact, False, 0.25)

    async def _submit(self, endpoint: str, approver: Any):
        args = {"endpoint_id": endpoint, "arguments": {"prompt": "a cat"}}
        request = ApprovalRequest("call-sub", "submit_queue_request", args, "spend", 0.025, self.budget_left_usd)
        yield request
        decision = await approver(request)
        self.decisions.append(decision)
        if decision.action == "reject":
            yield Token("Not submitted: you rejected it.")
            yield TurnEnd(answer="Not submitted: you rejected it.")
            return
        if decision.action == "edit" and decision.args:
            args = decision.args
        self.tool_calls.append(("submit_queue_request", args))
        yield ToolStart("call-sub", "submit_queue_request", args, "spend")
        rid = "req-0001"
        yield ToolEnd("call-sub", "submit_queue_request", f"Submitted {rid}",
                      {"request_id": rid, "queue_position": 2, "status_url": "http://x/status"}, False, 0.1)
        self.spent_usd += 0.025
        self.budget_left_usd -= 0.025
        wargs = {"endpoint_id": endpoint, "request_id": rid}
        yield ToolStart("call-watch", "stream_queue_status", wargs)
        for data in ({"status": "IN_QUEUE", "queue_position": 1, "logs": None},
                     {"status": "IN_PROGRESS", "logs": [{"message": "step 3/28"}]},
                     {"status": "IN_PROGRESS", "logs": [{"message": "step 28/28"}]}):
            yield ToolProgress("call-watch", "stream_queue_status", {**data, "request_id": rid, "endpoint_id": endpoint})
        yield ToolEnd("call-watch", "stream_queue_status", "COMPLETED",
                      {"status": "COMPLETED", "request_id": rid, "logs": []}, False, 1.5)
        result = {"images": [{"url": png_data_url(), "width": 16, "height": 16, "content_type": "image/png"}],
                  "seed": 42}
        yield ToolStart("call-res", "get_queue_result", wargs)
        yield ToolEnd("call-res", "get_queue_result", "1 image", result, False, 0.2)
        yield Token("Here is your image.")
        yield TurnEnd(answer="Here is your image.", spent_usd=self.spent_usd)


@dataclass
class FakeRuntime:
    """What the app reads from a runtime: runner, mode, model_name, transcript, personas."""

    persona_name: str = "producer"
    mode: str = "sandbox"
    model_name: str = "offline-planner"
    transcript: FakeTranscript = field(default_factory=FakeTranscript)
    personas: dict[str, FakePersona] = field(default_factory=lambda: dict(PERSONAS))
    closed: bool = False
    sessions: int = 0

    def __post_init__(self) -> None:
        self.runner = self._runner(self.persona_name)

    def _runner(self, name: str) -> FakeRunner:
        self.sessions += 1
        return FakeRunner(self.personas[name], self.transcript, f"session-{self.sessions}")

    notices: list[str] = field(default_factory=list)
    listener: Any = None
    sandbox_url: str | None = None

    def switch_persona(self, name: str) -> FakeRunner:
        """As agent.core.runtime.Runtime does: the same session goes on (spend, transcript session;
        the conversation is the app's), recorded as a persona_switch row."""
        if name not in self.personas:
            raise KeyError(f"no persona {name}")
        old = self.runner
        self.runner = FakeRunner(self.personas[name], self.transcript, old.session_id)
        self.runner.spent_usd = old.spent_usd
        self.runner.budget_left_usd = max(0.0, 5.0 - old.spent_usd)
        self.transcript.add(old.session_id, "persona_switch", {"from": old.persona.name, "to": name})
        return self.runner

    def new_session(self) -> FakeRunner:
        self.runner = self._runner(self.runner.persona.name)
        return self.runner

    async def aclose(self) -> None:
        self.closed = True


class FakeFactory:
    """A runtime factory that remembers the runtimes it built; `gate` delays the build."""

    def __init__(self, gate: asyncio.Event | None = None, error: Exception | None = None) -> None:
        self.built: list[FakeRuntime] = []
        self.gate, self.error = gate, error

    async def __call__(self, settings: Any, persona: str | None) -> FakeRuntime:
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        rt = FakeRuntime(persona_name=persona or "producer")
        self.built.append(rt)
        return rt
