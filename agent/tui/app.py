"""`fal-persona` with no arguments: the chat TUI.

Start-up paints the chat and a usable prompt first; the runtime (LangChain, the sandbox, the
model) is built in a worker after the first refresh. Module-level imports stay Textual-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer

from agent.tui import runtime_glue as glue
from agent.tui.attachments import AttachmentBar
from agent.tui.chat import AnswerMessage, ChatView, ErrorMessage, NoticeMessage, UserMessage
from agent.tui.commands import parse_slash, welcome_markdown
from agent.tui.header import StatusHeader
from agent.tui.history import InputHistory
from agent.tui.jobs import JobRow, JobsPanel
from agent.tui.keys import DEFAULT_KEYS
from agent.tui.mcp_status import follow as mcp_follow
from agent.tui.mcp_status import header_label as mcp_header_label
from agent.tui.mcp_status import unfollow as mcp_unfollow
from agent.tui.palette import FalCommands
from agent.tui.prompt import PromptInput
from agent.tui.webhooks import header_label as webhook_header_label
from agent.tui.webhooks import start_notices as webhook_start_notices

_log = logging.getLogger(__name__)


def at_edge(where: str) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Wrap an async handler of the app: an unexpected exception becomes an error card."""

    def wrap(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(handler)
        async def guarded(self: FalPersonaApp, *args: Any, **kw: Any) -> None:
            try:
                await handler(self, *args, **kw)
            except Exception as exc:  # the app's edge: shown, logged, app stays up
                await self.report_error(where, exc)

        return guarded

    return wrap

WELCOME_MODE = "With no keys set, it runs against a local fal.ai sandbox and the offline planner."


class FalPersonaApp(App):
    """The chat app. `runtime_factory(settings, persona_name)` builds the runtime (sync or async);
    tests pass a fake. `keys` overrides bindings (default: the config file's `[keys]`)."""

    @dataclass
    class WebhookNotice(Message):
        """A webhook/trigger notice from the listener's thread (a TriggerNotice)."""

        notice: Any

    # Package data, absolute (subclasses live elsewhere): found wherever the wheel is installed.
    CSS_PATH = str(resources.files("agent.tui") / "app.tcss")
    TITLE = "fal-persona"
    COMMANDS = App.COMMANDS | {FalCommands}
    BINDINGS = [
        Binding(DEFAULT_KEYS["cancel"], "cancel_turn", "Cancel turn", id="cancel"),
        Binding(DEFAULT_KEYS["clear"], "clear_chat", "Clear", id="clear"),
        Binding(DEFAULT_KEYS["persona"], "switch_persona", "Persona", id="persona"),
        Binding(DEFAULT_KEYS["transcript"], "browse_transcript", "Transcript", id="transcript"),
        Binding(DEFAULT_KEYS["jobs"], "toggle_jobs", "Jobs", id="jobs"),
        Binding(DEFAULT_KEYS["export"], "export('md')", "Export", id="export"),
        Binding(DEFAULT_KEYS["resume"], "resume_chat", "Resume", id="resume", show=False),  # in /help
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
        # The prompt keeps focus; the chat still scrolls from the keyboard.
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False, priority=True),
    ]

    def __init__(self, *, runtime_factory: Callable[..., Any] | None = None, settings: Any = None,
                 persona: str | None = None, user: str | None = None, no_log: bool = False,
                 listen: bool | None = None,
                 keys: dict[str, str] | None = None, history_path: Path | None = None,
                 clock: Callable[[], float] = time.monotonic, max_mounted: int = 120,
                 personas_loader: Callable[[], dict[str, Any]] | None = None,
                 resume: str | bool | None = None) -> None:
        super().__init__()
        self.resume = resume
        """Reopen a stored chat once the runtime is up: True the latest, a str that session."""
        self._preview: Any = None  # the worker painting a reopened chat before the runtime is up
        self.painted_session: str | None = None
        """The reopened session whose chat is on screen (agent/tui/resume.py)."""
        self.runtime_factory = runtime_factory or glue.default_factory
        self.settings = settings
        self.start_persona, self.user, self.no_log = persona, user, no_log
        self.listen = listen
        self._listening_to: Any = None  # the listener whose notices we follow
        self._unsubscribe: Callable[[], None] | None = None
        self.keys = keys
        self.history_path = history_path
        self.clock = clock
        self.max_mounted = max_mounted
        self.personas_loader = personas_loader
        self.personas: dict[str, Any] = {}
        self.runtime: Any = None
        self.runtime_error: str | None = None
        self.ready = asyncio.Event()
        self.turn_worker: Any = None
        self.pending: list[tuple[str, str | None, dict | None]] = []
        self.first_paint_at: float | None = None
        self.following: set[str] = set()  # request ids followed in the background

    # -- layout -----------------------------------------------------------------------------
    def compose(self):
        if self.keys is None:
            from agent.tui.keys import load_keys

            self.keys = load_keys()
        if self.history_path is None:
            from agent.locations import input_history

            self.history_path = input_history()
        # Kept as attributes: App.query_one searches the *active* screen, which is a modal
        # while an approval is open.
        self._header = StatusHeader(id="header")
        self._chat = ChatView(max_mounted=self.max_mounted, id="chat")
        self._jobs = JobsPanel(clock=self.clock, id="jobs")
        self._jobs.on_outcome = self._job_outcome
        self._attachments = AttachmentBar(id="attachments")
        self._prompt = PromptInput(InputHistory(self.history_path), self.keys, id="prompt",
                                   placeholder="Type a request, or /help. Enter sends, ctrl+j adds a line.")
        yield self._header
        with Horizontal(id="main"):
            with Vertical(id="chat-column"):
                yield self._chat
                yield self._chat.marker
            yield self._jobs
        yield self._attachments
        yield self._prompt
        yield Footer()

    @property
    def chat(self) -> ChatView:
        return self._chat

    @property
    def attachments(self) -> AttachmentBar:
        return self._attachments

    @property
    def jobs(self) -> JobsPanel:
        return self._jobs

    @property
    def header(self) -> StatusHeader:
        return self._header

    @property
    def runner(self) -> Any:
        return self.runtime.runner if self.runtime is not None else None

    async def on_mount(self) -> None:
        self.set_keymap({k: v for k, v in (self.keys or {}).items() if v})
        self._prompt.focus()
        if not self.resume:  # a reopened chat replaces the welcome at once: do not draw it
            await self.chat.add(AnswerMessage(welcome_markdown(WELCOME_MODE)))
        else:  # paint the chat being reopened while the runtime is built
            from agent.tui.resume import preview

            self._preview = self.run_worker(preview(self, None if self.resume is True else str(self.resume)),
                                            group="resume")
        self.call_after_refresh(self._first_paint)

    def _first_paint(self) -> None:
        self.first_paint_at = time.perf_counter()
        self.load_runtime()

    # -- runtime ----------------------------------------------------------------------------
    @work(exclusive=True, group="runtime")
    async def load_runtime(self) -> None:
        """Build settings, personas and the runtime off the first paint's critical path."""
        if self._preview is not None:
            # A reopened chat paints first: the build's imports would slow that paint down.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3.0):
                    await self._preview.wait()
        try:
            if self.settings is None:
                self.settings = await asyncio.to_thread(glue.default_settings, self.user, self.no_log,
                                                      self.listen)
            self.runtime = await glue.build(self.runtime_factory, self.settings, self.start_persona)
        except Exception as exc:  # shown in the chat; the app stays usable for /help etc.
            self.runtime_error = glue_error(exc)
            await self.chat.add(ErrorMessage(f"could not start the agent: {self.runtime_error}"))
            self.header.mode = "not started"
            self.ready.set()
            return
        self._refresh_header()
        await self.chat.add(NoticeMessage(glue.mode_notice(self.runtime, self.settings), kind="mode"))
        self._subscribe_webhooks()
        for note in webhook_start_notices(self.runtime):
            await self.chat.add(NoticeMessage(note, kind="webhook"))
        if self.resume:  # before `ready`: nothing typed meanwhile may run in a fresh session
            from agent.tui.resume import resume_into

            await resume_into(self, None if self.resume is True else str(self.resume), wait=False)
        self.ready.set()
        await self._load_personas()

    async def _load_personas(self) -> None:
        try:
            if self.personas_loader is not None:
                self.personas = await glue.maybe_await(self.personas_loader())
            else:
                known = getattr(self.runtime, "personas", None)
                self.personas = known if isinstance(known, dict) and known else await asyncio.to_thread(_load_personas)
        except Exception as exc:  # a bad persona file names itself in the message
            await self.chat.add(ErrorMessage(f"personas: {glue_error(exc)}"))

    def _refresh_header(self) -> None:
        header, rt = self.header, self.runtime
        if rt is None:
            return
        header.persona = glue.persona_name(rt)
        header.model = glue.model_name(rt)
        header.mode = glue.mode_label(rt, self.settings)
        header.spent = float(getattr(rt.runner, "spent_usd", 0.0) or 0.0)
        header.budget_left = getattr(rt.runner, "budget_left_usd", None)
        gate = getattr(rt.runner, "gate", None)
        header.budget = getattr(gate, "budget_usd", None) if gate is not None else None
        header.webhooks = webhook_header_label(rt)
        header.mcp = mcp_header_label(rt)

    def _subscribe_webhooks(self) -> None:
        """Follow the runtime's listener and MCP servers (again after a rebuilt runtime or a
        persona switch brought new ones)."""
        mcp_follow(self)
        listener = getattr(self.runtime, "listener", None)
        if listener is self._listening_to:
            return
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        self._listening_to = listener
        if listener is not None and callable(getattr(listener, "subscribe", None)):
            # post_message is thread-safe and returns at once: the listener's loop never waits
            # for the UI (call_from_thread would, and could deadlock against shutdown).
            self._unsubscribe = listener.subscribe(
                lambda notice: self.post_message(self.WebhookNotice(notice)))

    async def on_unmount(self) -> None:
        mcp_unfollow(self)
        if self._unsubscribe:
            self._unsubscribe()
        if self.runtime is not None:
            await glue.close(self.runtime)

    # -- sending ----------------------------------------------------------------------------
    @on(PromptInput.Submitted)
    @at_edge("your input")
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text
        if text.startswith("/"):
            await self._slash(text)
            return
        if self.attachments.files:  # they go with this request, then the chips clear
            from agent.tui.actions import send_with_attachments

            await send_with_attachments(self, text)
            return
        await self.chat.add(UserMessage(text))
        self.start_turn(text)

    @on(PromptInput.PathsPasted)
    @at_edge("a pasted path")
    async def _paths_pasted(self, event: PromptInput.PathsPasted) -> None:
        from agent.tui.actions import attach_files

        await attach_files(self, event.paths)

    def start_turn(self, text: str, tool: str | None = None, args: dict | None = None) -> None:
        """Run now, or queue behind the running turn (nothing typed is ever dropped)."""
        if self._busy():
            self.pending.append((text, tool, args))
            self.notify("Queued: it runs when the current turn ends (Esc cancels).", timeout=3)
            return
        self.turn_worker = self.run_events(text, tool, args)

    def _next_turn(self) -> None:
        if self.pending and not self._busy():
            self.turn_worker = self.run_events(*self.pending.pop(0))

    def _busy(self) -> bool:
        return self.turn_worker is not None and not self.turn_worker.is_finished

    async def _slash(self, text: str) -> None:
        from agent.tui.actions import run_slash

        await run_slash(self, parse_slash(text), text)

    @work(group="turn")
    async def run_events(self, text: str, tool: str | None = None, args: dict | None = None, *,
                         pending: bool = False) -> None:
        """One turn (or a direct tool call, or with `pending` a reopened chat's unanswered
        approvals): stream the runner's events into the chat."""
        from agent.tui.turn import TurnRenderer

        await self.ready.wait()
        if self.runtime is None:
            await self.chat.add(ErrorMessage(f"the agent is not running: {self.runtime_error}"))
            return
        if tool and args is None:  # a slash command meaning "the latest request": read it now,
            from agent.tui.actions import latest_request  # not when it was typed behind a turn

            args = latest_request(self)
            if not args:
                await self.chat.add(ErrorMessage(f"no request in this session yet; give its ids: "
                                                 f"{text.split()[0]} ENDPOINT ID"))
                return
            await self.chat.add(NoticeMessage(f"{text.split()[0]} → the latest request: "
                                              f"{args['endpoint_id']} {args['request_id']}"))
        renderer = TurnRenderer(self.chat, self.jobs, follow=self.follow)
        self.header.busy = True
        try:
            runner = self.runtime.runner
            stream = (runner.run_pending(self.approve) if pending
                      else runner.run_tool(tool, args or {}, self.approve) if tool
                      else runner.run_turn(text, self.approve))
            async for ev in stream:
                await renderer.handle(ev)
                self._refresh_header()
        except asyncio.CancelledError:
            await renderer.cancelled()
            raise
        except Exception as exc:  # readable message, never a traceback; recorded as what it was
            await self.report_error("turn", exc)
        finally:
            self.header.busy = False
            self._refresh_header()
            if self.pending:
                self.call_later(self._next_turn)

    # -- the app's edge ---------------------------------------------------------------------
    async def report_error(self, where: str, exc: BaseException) -> None:
        """An unexpected exception: an error card, a transcript row of its kind, a log line.

        The app stays up; nothing is reported as something else (e.g. as a cancellation)."""
        from agent.tui.turn import readable_error

        message = readable_error(exc)
        _log.error("unexpected error in %s: %s", where, message, exc_info=exc)
        log = getattr(self.runner, "log", None) if self.runtime is not None else None
        if log is not None:
            try:
                log.record("error", {"kind": "ui_error", "where": where, "type": type(exc).__name__,
                                     "message": message})
                log.settle()
            except Exception:  # the card below still tells the user
                _log.exception("could not record the error in the transcript")
        try:
            await self.chat.add(ErrorMessage(f"unexpected error in {where}: {message}"))
        except Exception:  # the chat itself is broken: a toast at least
            self.notify(f"unexpected error in {where}: {message}", severity="error")

    def focus_prompt(self) -> None:
        """Give the keyboard back to the prompt (after a button, a modal)."""
        if self._prompt.is_attached:
            self._prompt.focus()

    # -- following jobs ---------------------------------------------------------------------
    def follow(self, endpoint_id: str, request_id: str) -> None:
        """Follow a request in the background until it ends (once per request)."""
        client = getattr(self.runtime, "client", None)
        if client is None or not endpoint_id or request_id in self.following:
            return
        self.following.add(request_id)
        self.run_worker(self._follow(client, endpoint_id, request_id), group="follow",
                        name=f"follow {request_id}")

    async def _follow(self, client: Any, endpoint_id: str, request_id: str) -> None:
        from agent.core.follow import JobOutcome, follow_job
        from agent.tui.progress import job_update
        from agent.tui.turn import preview_once, result_summary

        try:
            async for event in follow_job(client, endpoint_id, request_id):
                if not isinstance(event, JobOutcome):
                    update = job_update(event.data)
                    if update is not None:
                        await self.jobs.update_job(update)
                    continue
                row = self.jobs.rows.get(request_id)
                if event.kind == "completed":
                    if row is None or row.outcome != "completed":
                        await self.jobs.set_result(request_id, endpoint_id, event.result,
                                                   result_summary(event.result, "result"))
                    await preview_once(self.chat, self.jobs, event.result, endpoint_id, request_id)
                elif event.kind in ("failed", "cancelled"):
                    if row is None or not row.outcome:
                        await self.jobs.set_result(request_id, endpoint_id, None, event.message[:80],
                                                   error=event.kind == "failed",
                                                   cancelled=event.kind == "cancelled")
                elif row is not None:
                    row.note("? " + event.message[:80])
        except Exception as exc:  # a broken follower must not end the app
            await self.report_error(f"following {request_id}", exc)
        finally:
            self.following.discard(request_id)

    @on(JobRow.CancelPressed)
    @at_edge("cancel")
    async def _cancel_job(self, message: Any) -> None:
        text = f"/cancel {message.endpoint_id} {message.request_id}"
        await self.chat.add(UserMessage(text))
        self.start_turn(text, "cancel_queue_request",
                        {"endpoint_id": message.endpoint_id, "request_id": message.request_id})
        self.focus_prompt()

    async def approve(self, request: Any) -> Any:
        """The runner's approver: opens the approval modal and waits for the decision."""
        from agent.core.events import Decision
        from agent.tui.screens import ApprovalScreen

        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        screen = ApprovalScreen(request)

        def settle(decision: Decision | None) -> None:
            if not future.done():  # (the screen always answers; a close without one is no approval)
                future.set_result(decision or Decision(action="reject", reason="closed without an answer"))

        self.push_screen(screen, callback=settle)
        try:
            decision = await future
        except asyncio.CancelledError:
            if screen.is_attached and self.screen is screen:
                self.pop_screen()
            raise
        verb = {"approve": "approved", "edit": "approved with edited arguments", "reject": "rejected"}
        await self.chat.add(NoticeMessage(f"{verb[decision.action]}: {request.name}", kind=decision.action))
        return decision

    # -- actions ----------------------------------------------------------------------------
    def action_cancel_turn(self) -> None:
        if self._busy():
            if self.pending:
                self.notify(f"Dropped {len(self.pending)} queued request(s).", timeout=3)
            self.pending.clear()
            self.turn_worker.cancel()
        else:
            self.notify("Nothing is running.", timeout=2)

    @at_edge("clear")
    async def action_clear_chat(self) -> None:
        await self.chat.clear()

    def action_toggle_jobs(self) -> None:
        self.jobs.display = not self.jobs.display
        self.jobs.set_class(bool(self.jobs.display), "shown")

    def action_scroll_chat(self, direction: int) -> None:
        if direction < 0:
            self.chat.scroll_page_up()
        else:
            self.chat.scroll_page_down()

    def on_resize(self, event: Any) -> None:
        """Narrow the jobs panel on small terminals, and hide it on very small ones."""
        width = event.size.width
        self.screen.set_class(width < 100, "narrow")
        self.screen.set_class(width < 64, "tiny")

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    @at_edge("new chat")
    async def action_new_chat(self) -> None:
        from agent.tui.actions import new_chat

        await new_chat(self)

    @at_edge("persona switch")
    async def action_switch_persona(self) -> None:
        from agent.tui.actions import pick_persona

        await pick_persona(self)

    @at_edge("persona switch")
    async def switch_persona(self, name: str) -> None:
        from agent.tui.actions import switch_persona

        await switch_persona(self, name)

    @at_edge("export")
    async def action_export(self, fmt: str = "md") -> None:
        from agent.tui.actions import export

        await export(self, fmt)

    def action_resume_chat(self) -> None:
        from agent.tui.resume import ResumePicker, resume_into

        def chosen(session_id: str | None) -> None:
            current = getattr(self.runner, "session_id", None)
            if session_id and session_id != current:
                self.run_worker(resume_into(self, session_id), group="resume", exclusive=True)
            self.focus_prompt()

        transcript = glue.transcript_of(self.runtime) if self.runtime else None
        self.push_screen(ResumePicker(transcript, getattr(self.runner, "session_id", None)), callback=chosen)

    def _job_outcome(self, row: Any) -> None:
        """A job's outcome, into the transcript, so a reopened chat shows it (agent/transcript/replay.py)."""
        log = getattr(self.runner, "log", None) if self.runtime is not None else None
        if log is None:
            return
        from tools.outcome import jsonable

        log.record("job_state", {"request_id": row.request_id, "endpoint_id": row.endpoint_id,
                                 "outcome": row.outcome, "status": row.status,
                                 "summary": row.result_line.lstrip("✓✗⊘ "), "result": jsonable(row.result)})
        log.settle()

    def action_browse_transcript(self) -> None:
        from agent.tui.browser import TranscriptBrowser

        self.push_screen(TranscriptBrowser(glue.transcript_of(self.runtime) if self.runtime else None))

    @on(WebhookNotice)
    async def _webhook(self, message: WebhookNotice) -> None:
        from agent.tui.webhooks import show_webhook

        try:
            await show_webhook(self, message.notice)
        except Exception as exc:  # one odd notice must not end the app
            await self.report_error("a webhook notice", exc)


def glue_error(exc: BaseException) -> str:
    from agent.tui.turn import readable_error

    return readable_error(exc)


def _load_personas() -> dict[str, Any]:
    from agent.personas import load_personas

    return load_personas()
