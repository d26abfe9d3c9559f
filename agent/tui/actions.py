"""The app's longer actions: slash commands, persona switching, new chat, export.

(Webhook notices live in `agent.tui.webhooks`.)"""

from __future__ import annotations

from typing import Any

from agent.tui import runtime_glue as glue
from agent.tui.chat import AnswerMessage, ErrorMessage, NoticeMessage, UserMessage
from agent.tui.commands import Slash, help_markdown


async def run_slash(app: Any, slash: Slash, text: str) -> None:
    """Carry out a parsed slash command."""
    if slash.error:
        await app.chat.add(ErrorMessage(slash.error))
        return
    if slash.action == "help":
        await app.chat.add(AnswerMessage(help_markdown(getattr(app, "keys", None))))
    elif slash.action == "clear":
        await app.action_clear_chat()
    elif slash.action == "new":
        await new_chat(app)
    elif slash.action == "persona":
        if slash.params:
            await switch_persona(app, slash.params[0])
        else:
            await pick_persona(app)
    elif slash.action == "export":
        await export(app, slash.params[0])
    elif slash.action == "quit":
        app.exit()
    elif slash.action == "attach":
        await attach_files(app, [slash.params[0]])
    elif slash.action == "detach":
        await detach(app, slash.params[0] if slash.params else None)
    elif slash.tool and slash.action == "latest":
        await app.chat.add(UserMessage(text))
        app.start_turn(text, slash.tool, None)  # resolved when it runs (it may wait behind a turn)
    elif slash.tool:
        await app.chat.add(UserMessage(text))
        app.start_turn(text, slash.tool, slash.args)


async def attach_files(app: Any, paths: list[str]) -> None:
    """Attach each file to the next request (a chip above the prompt); a path that is not a
    readable file is an error in the chat and attaches nothing."""
    from agent.tui.attachments import AttachmentError, attach, human_size

    for raw in paths:
        try:
            item = attach(raw)
        except AttachmentError as exc:
            await app.chat.add(ErrorMessage(str(exc)))
            continue
        if await app.attachments.add(item):
            app.notify(f"attached {item.name} ({item.kind}, {human_size(item.size)}): it goes "
                       "with your next request", timeout=3)
        else:
            app.notify(f"{item.name} is attached already", severity="warning", timeout=3)


async def send_with_attachments(app: Any, text: str) -> None:
    """Send `text` with the attached files (the chips clear): shown with an `attached:` line,
    sent in the form the model reads (`agent.tui.attachments.request_text`)."""
    from agent.tui.attachments import attached_line, request_text

    files = await app.attachments.take()
    await app.chat.add(UserMessage(f"{text}\n{attached_line(files)}"))

    def offline() -> bool:
        flag = getattr(app.settings, "uses_offline_planner", None)
        if flag is None and app.runtime is not None:
            flag = "offline" in glue.model_name(app.runtime).lower()
        return bool(flag)

    if app.ready.is_set():
        app.start_turn(request_text(text, files, offline=offline()))
        return

    async def when_ready() -> None:  # which model reads them is known once the runtime is up
        await app.ready.wait()
        app.start_turn(request_text(text, files, offline=offline()))

    app.run_worker(when_ready(), group="attach-send")


async def detach(app: Any, which: str | None) -> None:
    """Take one attached file off (by number, name or path), or all of them."""
    bar = app.attachments
    if not bar.files:
        app.notify("nothing is attached", severity="warning", timeout=2)
        return
    if which is None:
        count = len(await bar.take())
        app.notify(f"detached {count} file{'s' if count != 1 else ''}", timeout=2)
        return
    item = bar.find(which)
    if item is None:
        names = ", ".join(f"{i}. {f.name}" for i, f in enumerate(bar.files, 1))
        await app.chat.add(ErrorMessage(f"no attached file {which!r}; attached: {names}"))
        return
    await bar.remove_file(item)
    app.notify(f"detached {item.name}", timeout=2)


def latest_request(app: Any) -> dict[str, str]:
    """The latest request of the session: the newest job row (what the user sees on top, and
    already there while the turn that submitted it is still running), else the newest one in
    the conversation, as the planner reads it; {} when there is none."""
    row = app.jobs.latest()
    if row is not None and row.endpoint_id:
        return {"endpoint_id": row.endpoint_id, "request_id": row.request_id}
    runner = app.runner
    history = runner.history if runner is not None else None
    if history:
        from agent.planner.refs import request_ref

        return request_ref(list(history))
    return {}


async def _ready_runtime(app: Any) -> Any:
    await app.ready.wait()
    if app.runtime is None:
        await app.chat.add(ErrorMessage(f"the agent is not running: {app.runtime_error}"))
    return app.runtime


async def pick_persona(app: Any) -> None:
    """Open the persona list; switch to the one picked."""
    from agent.tui.screens import PersonaScreen

    if not app.personas:
        app.notify("Personas are still loading.", severity="warning")
        return
    current = glue.persona_name(app.runtime) if app.runtime else None

    def chosen(name: str | None) -> None:
        if name and name != current:
            app.run_worker(switch_persona(app, name), group="runtime", exclusive=True)

    app.push_screen(PersonaScreen(app.personas, current), callback=chosen)


async def switch_persona(app: Any, name: str) -> None:
    """Switch to persona `name` (a clear message when it does not exist)."""
    if app.personas and name not in app.personas:
        known = ", ".join(sorted(app.personas))
        await app.chat.add(ErrorMessage(f"no persona named {name!r}; known: {known}"))
        return
    if app._busy():
        # Switch once the running turn ends (Esc ends it now); the app stays responsive meanwhile.
        app.notify(f"Switching to {name} when the current turn ends (Esc ends it now).", timeout=3)
        worker = app.turn_worker

        async def later() -> None:
            try:
                await worker.wait()
            except Exception:  # a failed or cancelled turn still ends
                pass
            await switch_persona(app, name)

        app.run_worker(later(), group="persona-switch", exclusive=True)
        return
    runtime = await _ready_runtime(app)
    if runtime is None:
        return
    try:
        app.runtime = await glue.switch_persona(runtime, name)
        app._subscribe_webhooks()
    except Exception as exc:  # e.g. a persona file with a bad field: say which
        from agent.tui.turn import readable_error

        await app.chat.add(ErrorMessage(f"could not switch persona: {readable_error(exc)}"))
        return
    app._refresh_header()
    await app.chat.add(NoticeMessage(
        f"persona: {glue.persona_name(app.runtime)} · same session: the conversation, the latest "
        "request and the spend carry over; this persona's tools and budget apply from now on",
        kind="persona"))


async def new_chat(app: Any) -> None:
    """A fresh session: clears the chat and starts a new transcript session."""
    if app._busy():
        app.turn_worker.cancel()
    runtime = await _ready_runtime(app)
    if runtime is None:
        return
    try:
        app.runtime = await glue.new_session(runtime)
        app._subscribe_webhooks()
    except Exception as exc:
        from agent.tui.turn import readable_error

        await app.chat.add(ErrorMessage(f"could not start a new chat: {readable_error(exc)}"))
        return
    await app.chat.clear()
    app._refresh_header()
    await app.chat.add(NoticeMessage("new chat", kind="persona"))


async def export(app: Any, fmt: str) -> None:
    """Export this session's transcript and say where it went."""
    runtime = await _ready_runtime(app)
    if runtime is None:
        return
    try:
        path = await glue.export(runtime, fmt)
    except Exception as exc:  # TranscriptError, OSError, "logging is off"...
        from agent.tui.turn import readable_error

        message = str(exc) if isinstance(exc, ValueError) else readable_error(exc)
        await app.chat.add(ErrorMessage(f"export failed: {message}"))
        return
    app.notify(f"transcript exported to {path}")
    await app.chat.add(NoticeMessage(f"transcript exported to {path}", kind="export"))
