"""The app's side of the runtime seam: building it, reading it, switching personas, export.

The app drives any `agent.core.contracts.SessionRuntime`: the real `agent.core.runtime.Runtime`
and the tests' fake implement the same Protocol.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from pathlib import Path
from typing import Any, Literal

from agent.core.contracts import SessionRuntime, Transcript

log = logging.getLogger(__name__)


async def maybe_await(value: Any) -> Any:
    """Await `value` when it is awaitable."""
    return await value if inspect.isawaitable(value) else value


async def build(factory: Any, settings: Any, persona: str | None) -> Any:
    """Call the (sync or async) factory; sync ones run in a thread so the UI keeps painting."""
    if inspect.iscoroutinefunction(factory):
        return await factory(settings, persona)
    return await maybe_await(await asyncio.to_thread(factory, settings, persona))


def default_factory(settings: Any, persona: str | None) -> Any:
    """The real runtime (imported here, after the first paint: it pulls in LangChain)."""
    from agent.core.runtime import build_runtime

    return build_runtime(settings, persona_name=persona)


def default_settings(user: str | None, no_log: bool, listen: bool | None = None) -> Any:
    """Settings from the environment, with the command line's --user/--no-log/--listen on top."""
    from agent.settings import with_flags

    return with_flags(user=user, no_log=no_log, listen=listen)


def persona_name(runtime: SessionRuntime) -> str:
    return runtime.runner.persona.name


def model_name(runtime: SessionRuntime) -> str:
    return runtime.model_name


def transcript_of(runtime: SessionRuntime) -> Transcript | None:
    return runtime.transcript


def mode_label(runtime: SessionRuntime, settings: Any) -> str:
    """`sandbox (no keys) + offline planner` / `live`."""
    mode = runtime.mode or "?"
    offline = getattr(settings, "uses_offline_planner", None)
    if offline is None:
        offline = "offline" in model_name(runtime).lower()
    label = "sandbox (no FAL_KEY)" if mode == "sandbox" else mode
    return label + (" + offline planner" if offline else "")


def mode_notice(runtime: SessionRuntime, settings: Any) -> str:
    """The chat notice that says what is real and what is emulated."""
    parts = []
    if runtime.mode == "sandbox":
        url = runtime.sandbox_url or ""
        parts.append("No FAL_KEY is set, so the local fal.ai sandbox is running"
                     + (f" at {url}" if url else "") + ": nothing is billed.")
    else:
        parts.append("Live: requests go to fal.ai and may cost money (you approve each spend).")
    if getattr(settings, "uses_offline_planner", False) or "offline" in model_name(runtime).lower():
        parts.append("No OPENAI_API_KEY, so the offline planner answers: it understands the commands "
                     "in the welcome above.")
    return " ".join(parts)


async def switch_persona(runtime: SessionRuntime, name: str) -> SessionRuntime:
    """Go on as persona `name` in the same session (`SessionRuntime.switch_persona` carries the
    conversation, the spend and the transcript session over). In a thread: it stops the MCP
    servers of the persona left and starts the new one's, which may take seconds."""
    await asyncio.to_thread(runtime.switch_persona, name)
    return runtime


async def new_session(runtime: SessionRuntime) -> SessionRuntime:
    """A fresh conversation with the same persona (the one way to start over)."""
    runtime.new_session()
    return runtime


async def close(runtime: Any) -> None:
    """Close a runtime, never raising (it is on its way out)."""
    closer = getattr(runtime, "aclose", None)
    if callable(closer):
        try:
            await maybe_await(closer())
        except Exception:  # shutting down: logged, never raised
            log.warning("closing the runtime failed", exc_info=True)


def export_path(session_id: str, fmt: str, when: float | None = None) -> Path:
    """Where an export goes: `<data dir>/exports/transcript-<session>-<time>.<fmt>`."""
    from agent.locations import home

    folder = home() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when or time.time()))
    base = folder / f"transcript-{str(session_id)[:12]}-{stamp}.{fmt}"
    n = 2
    while base.exists():
        base = folder / f"transcript-{str(session_id)[:12]}-{stamp}-{n}.{fmt}"
        n += 1
    return base


_EXPORT_FORMATS: dict[str, Literal["jsonl", "md"]] = {"jsonl": "jsonl", "md": "md"}


async def export(runtime: Any, fmt: str) -> Path:
    """Write this session's transcript to a file; ValueError with a reason when impossible."""
    transcript = transcript_of(runtime)
    if transcript is None or getattr(transcript, "enabled", True) is False:
        raise ValueError("the transcript is off (--no-log or `logs off`), so there is nothing to export")
    session_id = getattr(runtime.runner, "session_id", None)
    kind = _EXPORT_FORMATS.get(fmt)
    if kind is None:
        raise ValueError(f"unknown export format {fmt!r} (use jsonl or md)")
    text = await asyncio.to_thread(transcript.export, session_id, kind)
    path = export_path(session_id or "all", fmt)
    await asyncio.to_thread(path.write_text, text, "utf-8")
    return path
