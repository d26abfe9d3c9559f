"""Assemble and run the webhook listener: for the CLI (blocking) and the TUI (a thread).

The TUI uses :func:`start_in_thread`::

    listener = start_in_thread(jwks_url=f"{sandbox.url}/.well-known/jwks.json", tools=tools)
    unsubscribe = listener.subscribe(on_notice)   # called from the listener's thread:
                                                  # hop to the UI with app.call_from_thread
    url = listener.webhook_url("fal-ai/flux/dev")  # attach to submit_queue_request
    listener.record_submission(request_id, "fal-ai/flux/dev")
    listener.stop()

It also runs the action worker and the schedules for as long as the listener is up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from starlette.applications import Starlette

from agent.settings import Settings
from agent.triggers.actions import ActionExecutor, PromptRunner
from agent.triggers.check import WebhookIntake
from agent.triggers.http_server import GuardedServer, bind_socket, uvicorn_server
from agent.triggers.inbox import Inbox
from agent.triggers.intake import Intake
from agent.triggers.notices import Subscribers, TriggerNotice
from agent.triggers.rules import Rule, load_rules
from agent.triggers.schedules import Schedule, Scheduler, load_schedules
from agent.triggers.server import WEBHOOK_PATH, ListenerState, create_app
from agent.triggers.worker import NO_RULE_MATCHED, ActionWorker, RetryPolicy
from tools.webhooks import JwksCache

Check = Literal["thread", "inline", "process"]

DEFAULT: Any = object()
"""Sentinel: build the default part (e.g. the TranscriptStore) rather than pass None."""


@dataclass
class Listener:
    """Everything a running listener is made of."""

    state: ListenerState
    app: Starlette
    inbox: Inbox
    jwks: JwksCache
    worker: ActionWorker
    scheduler: Scheduler
    subscribers: Subscribers


def open_transcript(settings: Settings) -> Any:
    """Engineer C's TranscriptStore, or None when logging is off or the module is absent."""
    if settings.no_log:
        return None
    try:
        from agent.transcript.store import TranscriptStore
    except ImportError:
        return None
    return TranscriptStore()


def make_intake(check: Check, inbox: Inbox, jwks: JwksCache, *, clock: Callable[[], float] = time.time,
                settled_as: str | None = None) -> WebhookIntake:
    """The intake strategy `check` names: "thread" or "inline" (intake.Intake), or "process"
    (the checker process, intake_process.ProcessIntake)."""
    if check == "process":
        from agent.triggers.intake_process import ProcessIntake

        return ProcessIntake(inbox, jwks, clock=clock, settled_as=settled_as)
    if check not in ("thread", "inline"):
        raise ValueError("check must be one of thread, inline, process")
    return Intake(inbox, jwks, clock=clock, settled_as=settled_as, inline_check=check == "inline")


def build_listener(
    settings: Settings | None = None,
    *,
    jwks_url: str | None = None,
    jwks: JwksCache | None = None,
    inbox: Inbox | None = None,
    rules: Sequence[Rule] | None = None,
    schedules: Sequence[Schedule] | None = None,
    tools: Mapping[str, Any] | None = None,
    prompt_runner: PromptRunner | None = None,
    transcript: Any = DEFAULT,
    max_body_bytes: int | None = None,
    clock: Callable[[], float] = time.time,
    policy: RetryPolicy | None = None,
    actions: bool = True,
    check: Check | None = None,
) -> Listener:
    """Wire inbox, verifier, worker and scheduler into one app (rules/schedules default to the files).

    ``actions=False`` builds a receive-only listener (a secondary process of ``--workers N``):
    it stores events pending as usual but runs neither the action worker nor the schedules,
    so nothing runs twice. ``check`` picks the intake (see make_intake); unset, it is
    ``settings.webhooks.check``, with "auto" meaning "thread" here (the in-process listener).
    """
    settings = settings or Settings()
    tuning = settings.webhooks
    if check is None:
        check = "thread" if tuning.check == "auto" else tuning.check
    subscribers = Subscribers()
    inbox = inbox or Inbox()
    jwks = jwks or JwksCache(jwks_url or settings.fal_config().jwks_url)
    if transcript is DEFAULT:
        transcript = open_transcript(settings)
    executor = ActionExecutor(tools=tools, prompt_runner=prompt_runner, transcript=transcript, settings=settings,
                              user=settings.user_name)
    rules = load_rules() if rules is None else rules
    schedules = load_schedules() if schedules is None else schedules
    worker = ActionWorker(inbox, rules, executor, clock=clock, policy=policy, subscribers=subscribers)
    scheduler = Scheduler(schedules, executor, clock=clock, subscribers=subscribers)
    # With no rule to run, events are stored already settled (see Inbox.add_many).
    intake = make_intake(check, inbox, jwks, clock=clock, settled_as=None if rules else NO_RULE_MATCHED)
    state = ListenerState(
        intake=intake, max_body_bytes=tuning.max_body_bytes if max_body_bytes is None else max_body_bytes,
        body_budget_bytes=tuning.body_budget_bytes, subscribers=subscribers,
        background=[worker.run, scheduler.run] if actions else [],
        on_stored=worker.wake if rules and actions else None)
    return Listener(state, create_app(state), inbox, jwks, worker, scheduler, subscribers)



def base_url(host: str, port: int) -> str:
    """http://host:port, bracketing IPv6 hosts."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class RunningListener:
    """A listener serving in a background thread; see the module docstring."""

    def __init__(self, listener: Listener, server: GuardedServer, thread: threading.Thread,
                 url: str, public_url: str | None) -> None:
        self.listener = listener
        self._server = server
        self._thread = thread
        self.url = url
        self.public_url = (public_url or f"{url}{WEBHOOK_PATH}").rstrip("/")

    @property
    def inbox(self) -> Inbox:
        return self.listener.inbox

    def webhook_url(self, endpoint_id: str | None = None) -> str:
        """The URL to give fal for a job, carrying the endpoint so rules can match on it."""
        if not endpoint_id:
            return self.public_url
        sep = "&" if "?" in self.public_url else "?"
        return f"{self.public_url}{sep}endpoint_id={quote(endpoint_id, safe='/')}"

    def subscribe(self, callback: Callable[[TriggerNotice], None]) -> Callable[[], None]:
        """Call `callback` (from the listener's thread) for every notice; returns an unsubscribe."""
        return self.listener.subscribers.subscribe(callback)

    def record_submission(self, request_id: str, endpoint_id: str) -> None:
        """Remember a submitted job's endpoint (the webhook body does not carry it)."""
        self.listener.inbox.record_submission(request_id, endpoint_id, time.time())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(host: str = "127.0.0.1", port: int = 0, *, settings: Settings | None = None,
                    public_url: str | None = None, startup_timeout_s: float = 10.0,
                    **build: Any) -> RunningListener:
    """Build a listener (see build_listener's arguments) and serve it from a daemon thread."""
    settings = settings or Settings()
    listener = build_listener(settings, **build)
    sock = bind_socket(host, port)
    server = uvicorn_server(listener.app, settings.webhooks)

    def serve() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=serve, name="webhook-listener", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the webhook listener did not start")
        time.sleep(0.01)
    actual = sock.getsockname()[1]
    return RunningListener(listener, server, thread, base_url(host, actual),
                           public_url or settings.webhook_public_url)
