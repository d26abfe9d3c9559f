"""Carry out a rule's or schedule's action, and write it to the transcript.

An action is a linked fal tool call, the built-in ``save_media``, a persona prompt run
through the agent, or a mix, in that order (the prompt sees what the tool returned). The
executor is built from injected parts so tests can run it with fakes:

- ``tools``: a mapping name -> LangChain tool, or an async factory returning one (default:
  ``tools.build_fal_tools()``, built on first use);
- ``prompt_runner``: ``async (persona, text, approve_spend) -> answer`` (default: one
  unattended turn of an ``AgentRunner`` built on these same tools and transcript, see
  :meth:`ActionExecutor.agent_turn`; not ``build_runtime``, which would start a second
  sandbox and listener and so could not see the job the event is about);
- ``transcript``: a ``TranscriptStore`` (or None to write nothing).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from agent import locations
from agent.media import MediaError, save_all
from agent.redact import redact_text
from agent.triggers.rules import Action, fill
from tools.errors import AppError
from tools.outcome import message_outcome
from tools.registry import REQUEST_ID_TOOLS, TOOL_KINDS

log = logging.getLogger(__name__)

PromptRunner = Callable[[str | None, str, bool], Awaitable[str]]
ToolsSource = Mapping[str, Any] | Callable[[], Awaitable[Mapping[str, Any]]]


class ActionError(AppError):
    """An action failed; `retryable=False` sends the event straight to the dead letters."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ActionExecutor:
    """Runs actions and records each one (kind `trigger_action` / `schedule_run`)."""

    def __init__(
        self,
        *,
        tools: ToolsSource | None = None,
        prompt_runner: PromptRunner | None = None,
        transcript: Any = None,
        user: str = "webhooks",
        media_client: Any = None,
        settings: Any = None,
    ) -> None:
        self._tools_source = tools
        self._tools: Mapping[str, Any] | None = tools if isinstance(tools, Mapping) else None
        self._prompt_runner = prompt_runner
        self.transcript = transcript
        self.user = user
        self._media_client = media_client
        self.settings = settings
        self._sessions: dict[str, str] = {}

    async def _all_tools(self) -> Mapping[str, Any]:
        if self._tools is None:
            if callable(self._tools_source):
                self._tools = await self._tools_source()
            else:
                from tools import build_fal_tools

                self._tools = {t.name: t for t in build_fal_tools()}
        return self._tools

    async def _tool(self, name: str) -> Any:
        tool = (await self._all_tools()).get(name)
        if tool is None:
            raise ActionError(f"tool {name!r} is not available", retryable=False)
        return tool

    def _session(self, persona: str | None) -> str | None:
        if self.transcript is None:
            return None
        key = persona or "-"
        if key not in self._sessions:
            self._sessions[key] = self.transcript.new_session(self.user, key, source="webhooks")
        return self._sessions[key]

    def record(self, kind: str, data: dict[str, Any], *, persona: str | None, ref: str,
               duration_s: float | None = None) -> None:
        """Write one transcript event; a transcript failure never fails the action."""
        if self.transcript is None:
            return
        try:
            self.transcript.record(self._session(persona), kind, data, user=self.user,
                                   persona=persona or "-", duration_s=duration_s, ref=ref)
        except Exception as exc:  # the inbox row still says what happened
            log.warning("trigger %s %s: the transcript refused its event: %s: %s", kind, ref,
                        type(exc).__name__, redact_text(str(exc)))

    async def run(
        self,
        action: Action,
        fields: Mapping[str, str],
        document: Any,
        *,
        persona: str | None,
        kind: str,
        ref: str,
        name: str,
        attempt: int = 1,
    ) -> str:
        """Run `action`; return a one-line outcome or raise ActionError (both are recorded)."""
        started = time.monotonic()
        data: dict[str, Any] = {"name": name, "attempt": attempt, **fields}
        try:
            outcome = await self._run(action, fields, document, persona, data, ref)
        except ActionError as exc:
            data["error"] = str(exc)
            self.record(kind, data, persona=persona, ref=ref, duration_s=time.monotonic() - started)
            raise
        except Exception as exc:  # an unexpected bug in a tool: retry, but say what it was
            data["error"] = redact_text(f"{type(exc).__name__}: {exc}")[:500]
            log.warning("trigger %s %s (%s, attempt %d) failed unexpectedly: %s", kind, name, ref, attempt,
                        data["error"])
            self.record(kind, data, persona=persona, ref=ref, duration_s=time.monotonic() - started)
            raise ActionError(data["error"]) from exc
        data["outcome"] = outcome
        self.record(kind, data, persona=persona, ref=ref, duration_s=time.monotonic() - started)
        return outcome

    async def _run(self, action: Action, fields: Mapping[str, str], document: Any,
                   persona: str | None, data: dict[str, Any], ref: str) -> str:
        parts: list[str] = []
        result: Any = document.get("payload") if isinstance(document, Mapping) else None
        if action.tool:
            artifact, content = await self._call_tool(action, fields)
            data["tool"] = {"name": action.tool, "content": content[:2000]}
            result = artifact if artifact is not None else result
            parts.append(f"{action.tool} ok")
        if action.save_media:
            folder = (locations.media_dir() if action.save_media is True
                      else Path(str(action.save_media)).expanduser())
            try:
                saved = await save_all(result, folder, fields.get("request_id") or "media",
                                       client=self._media_client)
            except MediaError as exc:
                raise ActionError(f"save_media: {exc}") from exc
            data["saved"] = [str(p) for p in saved]
            parts.append(f"saved {len(saved)} file(s) to {folder}")
        if action.prompt:
            text = fill(action.prompt, fields)
            answer = await self._prompt(persona, text, action.approve_spend, ref)
            data["prompt"] = text
            data["answer"] = answer[:4000]
            parts.append("prompt answered")
        return "; ".join(parts)

    async def _call_tool(self, action: Action, fields: Mapping[str, str]) -> tuple[Any, str]:
        """Invoke the linked tool; a tool's `Error:` answer becomes an ActionError."""
        name = action.tool or ""
        if TOOL_KINDS.get(name) != "read" and not action.approve_spend:
            raise ActionError(f"{name} spends or destroys; set approve_spend = true to allow it",
                              retryable=False)
        args = dict(action.args)
        if not args and name in REQUEST_ID_TOOLS:
            args = {"endpoint_id": "{endpoint_id}", "request_id": "{request_id}"}
        args = fill(args, fields)
        if name in REQUEST_ID_TOOLS and not args.get("endpoint_id"):
            raise ActionError("the event's endpoint is unknown, so the job cannot be looked up",
                              retryable=False)
        tool = await self._tool(name)
        call = {"type": "tool_call", "id": f"trigger-{uuid.uuid4().hex[:12]}", "name": name, "args": args}
        message = await tool.ainvoke(call)
        content = getattr(message, "content", message)
        content = content if isinstance(content, str) else str(content)
        artifact = getattr(message, "artifact", None)
        if not message_outcome(message).ok:
            raise ActionError(f"{name}: {content[:300]}")
        return artifact, content

    async def _prompt(self, persona: str | None, text: str, approve_spend: bool, ref: str) -> str:
        try:
            if self._prompt_runner is not None:
                return await self._prompt_runner(persona, text, approve_spend)
            return await self.agent_turn(persona, text, approve_spend, ref=ref)
        except ActionError:
            raise
        except Exception as exc:
            raise ActionError(f"prompt: {type(exc).__name__}: {exc}"[:500]) from exc

    async def agent_turn(self, persona: str | None, text: str, approve_spend: bool, *, ref: str) -> str:
        """One unattended agent turn on this executor's tools; its transcript rows carry `ref`.

        Spending and cancelling tools are rejected unless the rule says approve_spend.
        """
        from agent.core.events import Decision, ErrorEvent, TurnEnd
        from agent.core.runner import AgentRunner
        from agent.personas import get_persona, load_personas
        from agent.settings import Settings

        async def approver(request: Any) -> Decision:
            if approve_spend:
                return Decision("approve", reason="trigger rule allows spending")
            return Decision("reject", reason="unattended trigger: spending needs approve_spend = true")

        settings = self.settings or Settings()
        chosen = get_persona(persona or settings.persona, load_personas())
        tools = list((await self._all_tools()).values())
        transcript = RefTranscript(self.transcript, ref) if self.transcript is not None else None
        runner = AgentRunner(settings, chosen, tools, transcript=transcript, user=self.user,
                             source="webhooks", session_id=self._session(persona))
        answer, errors = "", []
        async for event in runner.run_turn(text, approver):
            if isinstance(event, TurnEnd):
                answer = event.answer
            elif isinstance(event, ErrorEvent):
                errors.append(event.message)
        if errors and not answer:
            raise ActionError("; ".join(errors)[:500])
        return answer


class RefTranscript:
    """A TranscriptStore seen through a lens that stamps `ref` (the event id) on every row it writes."""

    def __init__(self, inner: Any, ref: str) -> None:
        self._inner = inner
        self._ref = ref

    def prepare(self, *args: Any, ref: str | None = None, **kwargs: Any) -> Any:
        return self._inner.prepare(*args, ref=ref or self._ref, **kwargs)

    def record(self, *args: Any, ref: str | None = None, **kwargs: Any) -> Any:
        return self._inner.record(*args, ref=ref or self._ref, **kwargs)

    def __getattr__(self, name: str) -> Any:  # write, new_session, ... pass straight through
        return getattr(self._inner, name)
