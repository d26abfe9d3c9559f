"""Wiring: settings in, a ready `Runtime` out (sandbox or live fal.ai, model, tools, transcript).

The TUI and `fal-persona ask` both start here. Heavy imports (LangChain, httpx, the sandbox)
happen inside `build_runtime`, so a UI can paint before they load.

With `settings.listener_enabled`, the webhook listener runs in a thread beside the session: with
the sandbox on a free loopback port (the sandbox signs its webhooks and serves the JWKS they
verify against), live on FAL_PERSONA_WEBHOOK_PORT behind FAL_PERSONA_WEBHOOK_URL. A listener
that cannot start never stops the session; `Runtime.notices` says why it is missing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real types; imported lazily at run time (see build_runtime)
    from langchain_core.tools import BaseTool

    from agent.core.contracts import Transcript, WebhookListener
    from agent.core.runner import AgentRunner
    from agent.personas import Persona
    from agent.settings import Settings
    from agent.transcript.replay import Replay
    from sandbox.server import RunningSandbox
    from tools.fal.client import FalClient
    from tools.fal.config import FalConfig

__all__ = ["Runtime", "build_runtime", "start_listener"]


log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything a session needs, and what to close afterwards.

    `mode` is `sandbox` (a local emulator started for this process) or `live`; `model_name`
    is the chat model answering (`offline-planner` without OpenAI settings); `personas` are
    all personas found; `runner` is the current persona's `AgentRunner`.
    """

    settings: Settings
    mode: str
    personas: dict[str, Persona]
    runner: AgentRunner
    tools: list[BaseTool]
    client: FalClient
    transcript: Transcript | None
    sandbox: RunningSandbox | None = None
    source: str = "tui"
    user: str | None = None
    listener: WebhookListener | None = None
    """The running webhook listener (`agent.triggers.listener.RunningListener`) or None."""
    webhooks_attached: bool = False
    """True when submits get the listener's URL (the queue can reach it)."""
    notices: list[str] = field(default_factory=list)
    """Things the user should know about this runtime (e.g. why the listener is not running)."""
    mcp: Any = None
    """The current persona's MCP servers (`agent.mcp.client.McpHub`) or None when it lists none;
    a persona switch stops them and starts the new persona's (`agent.mcp.attach`)."""
    _closed: bool = field(default=False, repr=False)

    @property
    def model_name(self) -> str:
        """The current runner's model name."""
        return self.runner.model_name

    @property
    def persona(self) -> Persona:
        """The current persona."""
        return self.runner.persona

    @property
    def webhook_url(self) -> str | None:
        """The URL jobs get for their webhooks, or None when none is attached."""
        return self.listener.webhook_url() if self.listener is not None and self.webhooks_attached else None

    @property
    def sandbox_url(self) -> str | None:
        """The sandbox's base URL when running in sandbox mode."""
        return getattr(self.sandbox, "url", None)

    def switch_persona(self, name: str) -> AgentRunner:
        """Go on as persona `name` in the same session; returns its runner.

        The conversation (so "the latest request"), the transcript session (so an export
        covers all of it) and the money spent so far carry over; the new persona's scope and
        budget apply from here on. The transcript records the switch."""
        from agent.core.runner import AgentRunner
        from agent.personas import get_persona

        persona = self._with_mcp(get_persona(name, self.personas))
        old = self.runner
        runner = AgentRunner(self.settings, persona, self.tools, transcript=self.transcript,
                             session_id=old.session_id, user=self.user, source=self.source,
                             webhooks=self._webhooks(), fal=self.client)
        runner.carry_over(old)
        old.log.record("persona_switch", {"from": old.persona.name, "to": persona.name,
                                          "spent_usd": old.spent_usd})
        old.log.settle()
        self.runner = runner
        return runner

    def new_session(self) -> AgentRunner:
        """A fresh conversation (a new transcript session) with the current persona."""
        from agent.core.runner import AgentRunner

        self.runner = AgentRunner(self.settings, self.runner.persona, self.tools,
                                  transcript=self.transcript, user=self.user, source=self.source,
                                  webhooks=self._webhooks(), fal=self.client)
        return self.runner

    def resume_session(self, session_id: str | None = None) -> Replay:
        """Go on with a stored conversation: `session_id` (or a unique prefix of it), default
        the most recently active one. Its persona (when it still exists), history, spend and
        unanswered approvals come back; new events append to the same transcript session.
        Returns what was rebuilt, for a UI to show. TranscriptError when there is none."""
        from agent.core.runner import AgentRunner
        from agent.personas import get_persona
        from agent.transcript.replay import replay
        from agent.transcript.store import TranscriptError

        store = self.transcript
        if store is None:
            raise TranscriptError("there is no transcript to resume from")
        sid = store.resolve_session(session_id) if session_id else store.latest_conversation()
        if sid is None:
            raise TranscriptError("there is no conversation to continue yet")
        rebuilt = replay(sid, store.events(sid))
        name = rebuilt.persona if rebuilt.persona in self.personas else self.runner.persona.name
        persona = self._with_mcp(get_persona(name, self.personas))
        runner = AgentRunner(self.settings, persona, self.tools,
                             transcript=store, session_id=sid, user=self.user, source=self.source,
                             webhooks=self._webhooks(), fal=self.client)
        runner.restore(rebuilt)
        self.runner = runner
        return rebuilt

    def _with_mcp(self, persona: Persona) -> Persona:
        """`persona` with its MCP servers' tools: the servers of the persona left are stopped,
        its own started (blocking while they start; kept when they already run)."""
        if self.mcp is None and not persona.mcp_servers:
            return persona
        from agent.mcp.attach import follow_persona

        self.mcp, persona, self.tools = follow_persona(self.mcp, persona, self.tools)
        return persona

    def _webhooks(self) -> WebhookListener | None:
        return self.listener if self.webhooks_attached else None

    async def aclose(self) -> None:
        """Close the client, stop the sandbox then the listener, close the transcript (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.client is not None:
                await self.client.aclose()
        finally:
            # The sandbox first: it stops delivering before the listener stops answering.
            if self.sandbox is not None:
                await asyncio.to_thread(self.sandbox.stop)
            if self.listener is not None:
                await asyncio.to_thread(self.listener.stop)
            if self.mcp is not None:
                await asyncio.to_thread(self.mcp.close)
            if self.transcript is not None and hasattr(self.transcript, "close"):
                self.transcript.close()


def build_runtime(settings: Settings, persona_name: str | None = None, *, source: str = "tui",
                  user: str | None = None) -> Runtime:
    """Start the sandbox if no fal.ai settings are given, then build client, tools, model,
    transcript and runner for `persona_name` (default: `settings.persona`)."""
    from agent.core.runner import AgentRunner
    from agent.personas import get_persona, load_personas
    from agent.transcript.store import TranscriptStore

    # tools.catalog, not the package root: an editable install seen from another directory
    # can load `tools` as a namespace package, skipping its __init__.
    from tools.catalog import build_fal_tools
    from tools.fal.client import FalClient
    from tools.registry import UPLOAD

    personas = load_personas()
    persona = get_persona(persona_name or settings.persona, personas)
    sandbox = None
    if settings.uses_sandbox:
        from sandbox.server import start_in_thread

        sandbox = start_in_thread()
        config = settings.fal_config(base_url=sandbox.url)
    else:
        config = settings.fal_config()
    listener = mcp = None
    try:
        listener, attached, notices = start_listener(settings, config, sandboxed=sandbox is not None)
        client = FalClient(config)
        # upload_file reads this machine's files: built for a chat or `ask` whose personas list
        # it, never for `fal-persona mcp` (its clients, maybe remote, must not read them).
        uploads = source != "mcp" and any(UPLOAD in p.tools for p in personas.values())
        tools = build_fal_tools(config=config, client=client, include_upload=uploads)
        if persona.mcp_servers:  # their tools join the fal tools; one that fails is a notice
            from agent.mcp.attach import attach

            mcp, persona, tools = attach(persona, tools)
            notices = [*notices, *mcp.notices]
        # The store also honours FAL_PERSONA_NO_LOG and the persistent `logs off` switch.
        transcript = TranscriptStore(enabled=not settings.no_log)
        runner = AgentRunner(settings, persona, tools, transcript=transcript, user=user, source=source,
                             webhooks=listener if attached else None, fal=client)
    except BaseException:
        if sandbox is not None:
            sandbox.stop()
        if listener is not None:
            listener.stop()
        if mcp is not None:
            mcp.close()
        raise
    return Runtime(settings=settings, mode="sandbox" if sandbox is not None else "live",
                   personas=personas, runner=runner, tools=tools, client=client,
                   transcript=transcript, sandbox=sandbox, source=source, user=user,
                   listener=listener, webhooks_attached=attached, notices=notices, mcp=mcp)


def start_listener(settings: Settings, config: FalConfig, *,
                   sandboxed: bool) -> tuple[WebhookListener | None, bool, list[str]]:
    """(listener or None, whether submits get its URL, notices); never raises for a listener problem."""
    if not settings.listener_enabled:
        return None, False, []
    from agent.redact import redact_text
    from agent.triggers.listener import start_in_thread

    async def listener_tools() -> dict[str, BaseTool]:
        # Rule actions run on the listener's own event loop, so they get their own client:
        # an httpx client's pool cannot be shared between two loops.
        from tools.catalog import build_fal_tools

        return {t.name: t for t in build_fal_tools(config=config)}

    if sandboxed:
        # The sandbox is local: loopback, and a free port unless one was asked for explicitly.
        port = settings.webhook_port if "webhook_port" in settings.model_fields_set else 0
        own = settings.model_copy(update={"webhook_public_url": None})
    else:
        port, own = settings.webhook_port, settings
    host = settings.webhook_host
    try:
        listener = start_in_thread(host, port, settings=own, jwks_url=config.jwks_url, tools=listener_tools)
    except Exception as exc:  # a busy port or bad rules file: go on without it
        log.warning("the webhook listener did not start on %s:%s", host, port, exc_info=True)
        reason = redact_text(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
        return None, False, [f"The webhook listener did not start on {host}:{port} ({reason}); "
                             "carrying on without it, so jobs get no webhook URL."]
    if sandboxed or settings.webhook_public_url:
        return listener, True, []
    return listener, False, [
        f"The webhook listener runs at {listener.url}, but fal.ai cannot reach a local address, so "
        "jobs get no webhook URL. Set FAL_PERSONA_WEBHOOK_URL to a public URL (e.g. a tunnel) "
        "that forwards to it."]
