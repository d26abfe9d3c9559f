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
import errno
import functools
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import uvicorn

from agent.settings import Settings
from agent.triggers.actions import ActionExecutor, PromptRunner
from agent.triggers.inbox import Inbox
from agent.triggers.notices import Subscribers, TriggerNotice
from agent.triggers.rules import Rule, load_rules
from agent.triggers.schedules import Schedule, Scheduler, load_schedules
from agent.triggers.server import WEBHOOK_PATH, ListenerState, create_app
from agent.triggers.worker import NO_RULE_MATCHED, ActionWorker, RetryPolicy
from tools.webhooks import JwksCache


DEFAULT: Any = object()
"""Sentinel: build the default part (e.g. the TranscriptStore) rather than pass None."""


@dataclass
class Listener:
    """Everything a running listener is made of."""

    state: ListenerState
    app: Any
    inbox: Inbox
    jwks: JwksCache | None
    worker: ActionWorker | None
    scheduler: Scheduler | None
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
    bare: bool = False,
    max_body_bytes: int | None = None,
    clock: Callable[[], float] = time.time,
    policy: RetryPolicy | None = None,
    actions: bool = True,
    check: str = "thread",
) -> Listener:
    """Wire inbox, verifier, worker and scheduler into one app (rules/schedules default to the files).

    ``actions=False`` builds a receive-only listener (a secondary process of ``--workers N``):
    it stores events pending as usual but runs neither the action worker nor the schedules,
    so nothing runs twice; ``check`` says where deliveries are verified and stored: "thread"
    (intake.Intake's threads), "inline" (on the event loop) or "process" (the checker process).
    """
    settings = settings or Settings()
    subscribers = Subscribers()
    inbox = inbox or Inbox()
    if max_body_bytes is None:
        max_body_bytes = settings.webhook_max_body_bytes
    limits = ConnectionLimits.from_settings(settings)
    budget = settings.webhook_body_budget_bytes
    if bare:
        state = ListenerState(jwks=None, inbox=None, bare=True, max_body_bytes=max_body_bytes,
                              limits=limits, body_budget_bytes=budget)
        return Listener(state, create_app(state), inbox, None, None, None, subscribers)
    jwks = jwks or JwksCache(jwks_url or settings.fal_config().jwks_url)
    if transcript is DEFAULT:
        transcript = open_transcript(settings)
    executor = ActionExecutor(tools=tools, prompt_runner=prompt_runner, transcript=transcript, settings=settings,
                              user=settings.user_name)
    rules = load_rules() if rules is None else rules
    schedules = load_schedules() if schedules is None else schedules
    worker = ActionWorker(inbox, rules, executor, clock=clock, policy=policy, subscribers=subscribers)
    scheduler = Scheduler(schedules, executor, clock=clock, subscribers=subscribers)
    state = ListenerState(
        jwks=jwks, inbox=inbox, max_body_bytes=max_body_bytes, clock=clock,
        subscribers=subscribers, background=[worker.run, scheduler.run] if actions else [],
        on_stored=worker.wake if rules and actions else None,
        settled_as=None if rules else NO_RULE_MATCHED, check=check, limits=limits, body_budget_bytes=budget)
    return Listener(state, create_app(state), inbox, jwks, worker, scheduler, subscribers)


def bind_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one); `reuse_port` lets siblings share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then; without it
    # Nagle and delayed ACKs can stall a response written in two parts by ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class ConnectionLimits:
    """What one sender may cost the listener; see Settings.webhook_* for each."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: float = 5.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.webhook_max_header_bytes, settings.webhook_max_headers,
                   settings.webhook_header_timeout_s, settings.webhook_body_timeout_s,
                   settings.webhook_keepalive_timeout_s, settings.webhook_max_connections)


def fd_headroom(max_connections: int, reserve: int = 64) -> int:
    """`max_connections` lowered to fit the open-file limit, keeping `reserve` descriptors for the
    inbox, the checker, the JWKS fetch and accept() itself (at the limit accept fails and real
    deliveries with it)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return max_connections
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(4, min(max_connections, soft - reserve))


def uvicorn_server(app: Any, *, http: str = "auto", loop: str = "auto",
                   limits: ConnectionLimits | None = None) -> uvicorn.Server:
    """A quiet uvicorn server tuned for many small POSTs (no access log; httptools/uvloop if present),
    with the listener's connection limits (`limits`, else the app's, else the defaults): see
    GuardedServer."""
    if limits is None:
        state = getattr(getattr(app, "state", None), "listener", None)
        limits = getattr(state, "limits", None) or ConnectionLimits()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            http=protocol_class(http), loop=loop, ws="none", backlog=2048,
                            timeout_keep_alive=limits.keepalive_timeout_s,  # type: ignore[arg-type]
                            h11_max_incomplete_event_size=limits.max_header_bytes)
    return GuardedServer(config, limits)


_READ_LIMIT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 19\r\n"
        b"connection: close\r\n\r\n{\"error\":\"timeout\"}")
_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: 30\r\nconnection: close\r\n\r\n{\"error\":\"headers_too_large\"}")


class _Guard:
    """The connections of one server: how many, and which may be evicted to make room (those
    between requests or still sending headers, the longest-waiting first)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.cap = fd_headroom(limits.max_connections)
        self.pending = 0  # accepted, protocol not made yet
        self.members: set[Any] = set()
        self.waiting: dict[Any, None] = {}  # insertion-ordered
        self.on_free: Callable[[], None] | None = None
        self.evicted = 0

    @property
    def open(self) -> int:
        return self.pending + len(self.members)

    def closed(self, conn: Any) -> None:
        self.waiting.pop(conn, None)
        if conn in self.members:
            self.members.discard(conn)
            if self.on_free is not None:
                self.on_free()

    def evict_one(self) -> bool:
        """Close the connection that has waited longest without a request in progress."""
        for conn in self.waiting:
            del self.waiting[conn]
            self.members.discard(conn)  # counted out now: abort's connection_lost comes later
            self.evicted += 1
            conn.transport.abort()
            return True
        return False


def _guarded(base: type) -> type:
    """`base` (uvicorn's httptools protocol) with header limits, timers and connection accounting.

    Head bytes are counted before they reach the parser (httptools buffers a header value of
    any size until its line ends), header fields as they are parsed: past either limit the
    sender gets 431 and is closed. One timer per connection enforces a deadline: the headers
    within header_timeout_s of connecting or of a request's first byte, the body within
    body_timeout_s of the headers; past it, 408 (if nothing was answered yet) and closed.
    Header values lose trailing whitespace (llhttp strips only the leading).
    """
    import httptools

    class Guarded(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, guard: _Guard, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.guard = guard
            limits = guard.limits
            self._max_head = limits.max_header_bytes
            self._max_fields = limits.max_headers
            self._head_s = limits.header_timeout_s
            self._body_s = limits.body_timeout_s
            self._in_head = True
            self._head_bytes = 0
            self._fields = 0
            self._refusal: bytes | None = None
            self._deadline: float | None = None
            self._timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.guard.members.add(self)
            self.guard.waiting[self] = None
            self._set_deadline(self.loop.time() + self._head_s)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.guard.closed(self)
            super().connection_lost(exc)

        def _set_deadline(self, when: float) -> None:
            self._deadline = when
            timer = self._timer
            if timer is None or timer.when() > when:
                if timer is not None:
                    timer.cancel()
                self._timer = self.loop.call_at(when, self._on_timer)

        def _on_timer(self) -> None:
            self._timer = None
            deadline = self._deadline
            if deadline is None:
                return
            if self.loop.time() < deadline:  # moved on since: wait for the new deadline
                self._timer = self.loop.call_at(deadline, self._on_timer)
                return
            transport = self.transport
            if transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
                transport.write(_408)
            transport.close()

        def _refuse(self, answer: bytes) -> None:
            transport = self.transport
            if not transport.is_closing():
                transport.write(answer)
                transport.close()

        def data_received(self, data: bytes) -> None:
            if self.timeout_keep_alive_task is not None:
                self.timeout_keep_alive_task.cancel()
                self.timeout_keep_alive_task = None
            if self._in_head:
                if self._deadline is None:  # a kept-alive connection's next request begins
                    self._set_deadline(self.loop.time() + self._head_s)
                room = self._max_head - self._head_bytes
                if len(data) > room and data.find(b"\r\n\r\n", 0, room + 4) < 0:
                    self._refuse(_431)
                    return
                self._head_bytes += len(data)
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                if self._refusal is not None:
                    self._refuse(self._refusal)
                    return
                self.send_400_response("Invalid HTTP request received.")
            except httptools.HttpParserUpgrade:
                self.send_400_response("Upgrades are not supported.")

        def on_header(self, name: bytes, value: bytes) -> None:
            self._fields += 1
            if self._fields > self._max_fields:
                self._refusal = _431
                raise ValueError("too many header fields")
            if value and value[-1] in (32, 9):  # trailing SP/HTAB is not part of the value
                value = value.rstrip(b" \t")
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self.guard.waiting.pop(self, None)
            self._set_deadline(self.loop.time() + self._body_s)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._deadline = None
            self._in_head = True  # what comes next is the next request's head
            self._head_bytes = 0
            self._fields = 0
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._in_head and not self.transport.is_closing():
                self.guard.waiting[self] = None  # idle until the next request: evictable

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def _guarded_h11(base: type) -> type:
    """uvicorn's h11 protocol with connection accounting only (its head limit is h11's
    incomplete-event size, its idle one timeout_keep_alive; no header or body timers)."""

    class GuardedH11(base):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, guard: _Guard, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.guard = guard

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.guard.members.add(self)

        def connection_lost(self, exc: Exception | None) -> None:
            self.guard.closed(self)
            super().connection_lost(exc)

    return GuardedH11


def protocol_class(http: Any) -> Any:
    """uvicorn's protocol for `http` ("auto", "httptools" or "h11"), guarded; a class as is."""
    if not isinstance(http, str):
        return http
    if http in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:
            if http == "httptools":
                raise
        else:
            return _guarded(HttpToolsProtocol)
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return _guarded_h11(H11Protocol)


class _Acceptor:
    """Accepts on one listening socket while the guard has room: back-pressure is the kernel's
    backlog. Stands in for the asyncio Server uvicorn would make (close, wait_closed)."""

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol], guard: _Guard) -> None:
        self.sock = sock
        self.factory = factory
        self.guard = guard
        self.loop = asyncio.get_running_loop()
        self.reading = False
        self.closed = False
        self._retry: asyncio.TimerHandle | None = None
        sock.setblocking(False)
        self._resume()

    def _resume(self) -> None:
        self._retry = None
        if not self.reading and not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)
            self.reading = True

    def _pause(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False

    def on_free(self) -> None:
        if not self.reading and self._retry is None:
            self._resume()

    def _accept(self) -> None:
        guard = self.guard
        for _ in range(64):
            if guard.open >= guard.cap and not guard.evict_one():
                self._pause()  # resumed when a connection closes
                return
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _READ_LIMIT_ERRNOS:  # out of descriptors after all: wait a little
                    self._pause()
                    self._retry = self.loop.call_later(0.1, self._resume)
                    return
                raise
            guard.pending += 1
            conn.setblocking(False)
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            self.loop.create_task(self._connect(conn))

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, sock=conn)
        except Exception:
            conn.close()
            self.guard.pending -= 1
            self.on_free()
        else:
            self.guard.pending -= 1

    def close(self) -> None:
        self.closed = True
        self._pause()
        if self._retry is not None:
            self._retry.cancel()

    async def wait_closed(self) -> None:
        return None


class GuardedServer(uvicorn.Server):
    """uvicorn's Server, accepting through _Acceptor and building guarded protocols.

    The limits (ConnectionLimits, from Settings): head size and field count (431), a header
    timeout and a body timeout (408), uvicorn's keep-alive timeout, and at most
    ``max_connections`` connections (lowered to fit the open-file limit). When full, the
    connection that has waited longest between requests or while sending its headers is closed
    to make room; if every connection is inside a request, accepting pauses until one closes.
    """

    def __init__(self, config: uvicorn.Config, limits: ConnectionLimits) -> None:
        super().__init__(config)
        self.limits = limits
        self.guard = _Guard(limits)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if not sockets:
            raise ValueError("GuardedServer serves sockets it is given (see bind_socket)")
        await super().startup(sockets=[])  # the lifespan, and no asyncio servers
        if not self.started:
            return
        config = self.config
        factory = functools.partial(config.http_protocol_class, config=config, server_state=self.server_state,
                                    app_state=self.lifespan.state, guard=self.guard)
        acceptors = [_Acceptor(sock, factory, self.guard) for sock in sockets]
        self.guard.on_free = lambda: [a.on_free() for a in acceptors]  # type: ignore[func-returns-value]
        self.servers = acceptors  # type: ignore[assignment]


def base_url(host: str, port: int) -> str:
    """http://host:port, bracketing IPv6 hosts."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class RunningListener:
    """A listener serving in a background thread; see the module docstring."""

    def __init__(self, listener: Listener, server: uvicorn.Server, thread: threading.Thread,
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
    server = uvicorn_server(listener.app)

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
