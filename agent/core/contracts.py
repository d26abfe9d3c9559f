"""The seams between the packages of `agent/`, as Protocols.

The UIs (`agent.tui`, `agent.cli`) and the triggers talk to the session core and the
transcript only through these. The real classes (`agent.core.runtime.Runtime`,
`agent.core.runner.AgentRunner`, `agent.transcript.store.TranscriptStore`,
`agent.triggers.listener.RunningListener`) implement them, and so do the test fakes, so a
fake that drifts from the real thing fails type checking (and `tests/test_contracts.py`).

    SessionRuntime ── runner: SessionRunner ── persona: PersonaView
          │                   └─ run_turn / run_tool → AsyncIterator[Event]
          ├─ transcript: Transcript | None
          └─ listener: WebhookListener | None
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from agent.core.events import ApprovalRequest, Decision, Event

Approver = Callable[[ApprovalRequest], Awaitable[Decision]]
"""What a UI hands a runner to decide on a guarded call."""


@runtime_checkable
class PersonaView(Protocol):
    """What a UI reads of a persona."""

    @property
    def name(self) -> str: ...
    @property
    def tools(self) -> Sequence[str]: ...
    @property
    def budget_usd(self) -> float | None: ...


@runtime_checkable
class Transcript(Protocol):
    """The transcript as its writers and readers use it (`TranscriptStore`)."""

    def new_session(self, user: str, persona: str, source: str = "tui") -> str: ...
    def record(self, session_id: str, kind: str, data: Mapping[str, Any], *, user: str | None,
               persona: str | None, duration_s: float | None = None,
               ref: str | None = None) -> int | None: ...
    def list_sessions(self, limit: int = 20) -> list[dict[str, Any]]: ...
    def events(self, session_id: str) -> list[dict[str, Any]]: ...
    def search(self, query: str, limit: int = 50) -> list[dict[str, Any]]: ...
    def export(self, session_id: str | None = None, fmt: Literal["jsonl", "md"] = "jsonl") -> str: ...
    def latest_conversation(self) -> str | None:
        """The most recently active session with a prompt in it (what a resume continues)."""
        ...
    def resolve_session(self, prefix: str) -> str:
        """The one session id equal to or starting with `prefix` (TranscriptError otherwise)."""
        ...
    def close(self) -> None: ...


@runtime_checkable
class WebhookListener(Protocol):
    """A running webhook listener, as a session uses it."""

    @property
    def url(self) -> str: ...

    def webhook_url(self, endpoint_id: str | None = None) -> str: ...
    def record_submission(self, request_id: str, endpoint_id: str) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...


@runtime_checkable
class SessionRunner(Protocol):
    """One persona's conversation: turns and slash-command tool calls, streamed as events."""

    @property
    def model_name(self) -> str: ...
    @property
    def persona(self) -> PersonaView: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def spent_usd(self) -> float: ...
    @property
    def budget_left_usd(self) -> float | None: ...
    @property
    def history(self) -> list[Any]:
        """The conversation so far, as LangChain messages (newest last)."""
        ...

    def run_turn(self, text: str, approver: Approver | None) -> AsyncIterator[Event]: ...
    def run_tool(self, name: str, args: dict[str, Any],
                 approver: Approver | None) -> AsyncIterator[Event]: ...


@runtime_checkable
class SessionRuntime(Protocol):
    """Everything a UI drives: the current runner, and what else runs beside it."""

    @property
    def mode(self) -> str:
        """`sandbox` (a local emulator started for this process) or `live`."""
        ...
    @property
    def runner(self) -> SessionRunner: ...
    @property
    def transcript(self) -> Transcript | None: ...
    @property
    def listener(self) -> WebhookListener | None: ...
    @property
    def notices(self) -> list[str]: ...
    @property
    def model_name(self) -> str: ...
    @property
    def sandbox_url(self) -> str | None: ...

    def switch_persona(self, name: str) -> SessionRunner: ...
    def new_session(self) -> SessionRunner: ...
    async def aclose(self) -> None: ...


RuntimeFactory = Callable[[Any, "str | None"], "SessionRuntime | Awaitable[SessionRuntime]"]
"""(settings, persona name or None) -> a runtime, sync or async."""


__all__ = ["Approver", "PersonaView", "RuntimeFactory", "SessionRunner", "SessionRuntime",
           "Transcript", "WebhookListener"]
