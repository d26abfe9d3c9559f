"""Wiring: settings in, a ready `Runtime` out (sandbox or live fal.ai, model, tools, transcript).

The TUI and `fal-persona ask` both start here. Heavy imports (LangChain, httpx, the sandbox)
happen inside `build_runtime`, so a UI can paint before they load.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Runtime:
    """Everything a session needs, and what to close afterwards.

    `mode` is `sandbox` (a local emulator started for this process) or `live`; `model_name`
    is the chat model answering (`offline-planner` without OpenAI settings); `personas` are
    all personas found; `runner` is the current persona's `AgentRunner`.
    """

    settings: Any
    mode: str
    personas: dict[str, Any]
    runner: Any
    tools: list[Any]
    client: Any
    transcript: Any
    sandbox: Any = None
    source: str = "tui"
    user: str | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def model_name(self) -> str:
        """The current runner's model name."""
        return self.runner.model_name

    @property
    def persona(self) -> Any:
        """The current persona."""
        return self.runner.persona

    @property
    def sandbox_url(self) -> str | None:
        """The sandbox's base URL when running in sandbox mode."""
        return getattr(self.sandbox, "url", None)

    def switch_persona(self, name: str) -> Any:
        """Start a new session as persona `name` (same tools and transcript); returns its runner."""
        from agent.personas import get_persona
        from agent.runner import AgentRunner

        persona = get_persona(name, self.personas)
        self.runner = AgentRunner(self.settings, persona, self.tools, transcript=self.transcript,
                                  user=self.user, source=self.source)
        return self.runner

    async def aclose(self) -> None:
        """Close the client, stop the sandbox, close the transcript (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.client is not None:
                await self.client.aclose()
        finally:
            if self.sandbox is not None:
                await asyncio.to_thread(self.sandbox.stop)
            if self.transcript is not None and hasattr(self.transcript, "close"):
                self.transcript.close()


def build_runtime(settings: Any, persona_name: str | None = None, *, source: str = "tui",
                  user: str | None = None) -> Runtime:
    """Start the sandbox if no fal.ai settings are given, then build client, tools, model,
    transcript and runner for `persona_name` (default: `settings.persona`)."""
    from agent.personas import get_persona, load_personas
    from agent.runner import AgentRunner
    from agent.transcript import TranscriptStore
    # tools.catalog, not the package root: an editable install seen from another directory
    # can load `tools` as a namespace package, skipping its __init__.
    from tools.catalog import build_fal_tools
    from tools.fal.client import FalClient

    personas = load_personas()
    persona = get_persona(persona_name or settings.persona, personas)
    sandbox = None
    if settings.uses_sandbox:
        from sandbox.server import start_in_thread

        sandbox = start_in_thread()
        config = settings.fal_config(base_url=sandbox.url)
    else:
        config = settings.fal_config()
    try:
        client = FalClient(config)
        tools = build_fal_tools(config=config, client=client)
        # The store also honours FAL_PERSONA_NO_LOG and the persistent `logs off` switch.
        transcript = TranscriptStore(enabled=not settings.no_log)
        runner = AgentRunner(settings, persona, tools, transcript=transcript, user=user, source=source)
    except BaseException:
        if sandbox is not None:
            sandbox.stop()
        raise
    return Runtime(settings=settings, mode="sandbox" if sandbox is not None else "live",
                   personas=personas, runner=runner, tools=tools, client=client,
                   transcript=transcript, sandbox=sandbox, source=source, user=user)
