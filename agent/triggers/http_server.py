"""The listener's HTTP server: uvicorn with limits a hostile sender cannot get past.

uvicorn alone has no header-size limit under httptools, no header or body timer, and no cap
on connections. Here, per connection (see :func:`_guarded`): the head's bytes are counted
before the parser sees them and its fields as they are parsed (431 past either), the headers
must arrive within a deadline and then the body within another (408), an idle kept-alive
connection closes after uvicorn's keep-alive timeout; and per server (:class:`GuardedServer`):
at most ``max_connections`` at once, fitted to the open-file limit, evicting the connection
that has waited longest between requests or while sending headers, else pausing accept() so
the rest wait in the kernel's backlog. Every limit is a field of
:class:`agent.settings.WebhookSettings`.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from agent.settings import WebhookSettings

log = logging.getLogger(__name__)

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


def uvicorn_server(app: Any, limits: WebhookSettings, *, http: str | None = None,
                   loop: str | None = None) -> GuardedServer:
    """A quiet uvicorn server tuned for many small POSTs (no access log; httptools/uvloop as
    `limits.http`/`limits.loop` pick, unless `http`/`loop` say otherwise), with the
    listener's limits: see GuardedServer."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            http=protocol_class(http or limits.http), loop=loop or limits.loop, ws="none",
                            backlog=2048, timeout_keep_alive=limits.keepalive_timeout_s,  # type: ignore[arg-type]  # uvicorn says int; a float works
                            h11_max_incomplete_event_size=limits.max_header_bytes)
    return GuardedServer(config, limits)


_READ_LIMIT_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 19\r\n"
        b"connection: close\r\n\r\n{\"error\":\"timeout\"}")
_400 = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 23\r\n"
        b"connection: close\r\n\r\n{\"error\":\"bad_request\"}")
_431 = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: 30\r\nconnection: close\r\n\r\n{\"error\":\"headers_too_large\"}")


class _Guard:
    """The connections of one server: how many, and which may be evicted to make room (those
    between requests or still sending headers, the longest-waiting first)."""

    def __init__(self, limits: WebhookSettings) -> None:
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


class _Deadline:
    """One timer per connection for its current deadline (headers, then body); past it the
    sender gets 408 (unless an answer was already started) and is closed. Mixed into uvicorn's
    protocols, which provide ``loop``, ``transport``, ``cycle`` and ``timeout_keep_alive_task``."""

    loop: asyncio.AbstractEventLoop
    transport: Any
    cycle: Any
    timeout_keep_alive_task: asyncio.TimerHandle | None
    _deadline: float | None = None
    _timer: asyncio.TimerHandle | None = None

    def _set_deadline(self, when: float) -> None:
        self._deadline = when
        timer = self._timer
        if timer is None or timer.when() > when:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(when, self._on_timer)

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

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

    class Guarded(_Deadline, base):
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

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.guard.members.add(self)
            self.guard.waiting[self] = None
            self._set_deadline(self.loop.time() + self._head_s)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            self.guard.closed(self)
            super().connection_lost(exc)

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

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to bytes that are not HTTP, in JSON like every other answer."""
            self._refuse(_400)

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
    """uvicorn's h11 protocol with connection accounting and the same header and body timers
    (its head limit is h11's incomplete-event size, its idle one timeout_keep_alive)."""
    import h11

    done = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)

    class GuardedH11(_Deadline, base):
        def __init__(self, *args: Any, guard: _Guard, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.guard = guard
            self._head_s = guard.limits.header_timeout_s
            self._body_s = guard.limits.body_timeout_s
            self._in_body = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.guard.members.add(self)
            self._set_deadline(self.loop.time() + self._head_s)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            self.guard.closed(self)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:  # the next request begins
                self._set_deadline(self.loop.time() + self._head_s)
            super().data_received(data)
            self._track()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:  # a pipelined head, partly in
                self._set_deadline(self.loop.time() + self._head_s)
            self._track()

        def _track(self) -> None:
            """Move the deadline along with h11's view of the request: head, body, done."""
            state = self.conn.their_state
            if state is h11.SEND_BODY and not self._in_body:
                self._in_body = True
                self._set_deadline(self.loop.time() + self._body_s)
            elif state in done:
                self._in_body = False
                self._deadline = None

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to bytes that are not HTTP (or a head over the limit), in JSON."""
            body = _400.partition(b"\r\n\r\n")[2]
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            self.transport.close()

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
                    log.debug("webhook listener: accept failed (%s); pausing 0.1 s", errno.errorcode.get(exc.errno))
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
        except Exception as exc:  # the peer is gone already, say; the others go on
            log.debug("webhook listener: dropped an accepted connection: %s: %s", type(exc).__name__, exc)
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

    The limits (WebhookSettings): head size and field count (431), a header
    timeout and a body timeout (408), uvicorn's keep-alive timeout, and at most
    ``max_connections`` connections (lowered to fit the open-file limit). When full, the
    connection that has waited longest between requests or while sending its headers is closed
    to make room; if every connection is inside a request, accepting pauses until one closes.
    """

    def __init__(self, config: uvicorn.Config, limits: WebhookSettings) -> None:
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
        protocol: Callable[..., asyncio.Protocol] = config.http_protocol_class  # a guarded one takes `guard`
        factory = functools.partial(protocol, config=config, server_state=self.server_state,
                                    app_state=self.lifespan.state, guard=self.guard)
        acceptors = [_Acceptor(sock, factory, self.guard) for sock in sockets]

        def free() -> None:
            for acceptor in acceptors:
                acceptor.on_free()

        self.guard.on_free = free
        self.servers = acceptors  # type: ignore[assignment]  # uvicorn only calls close() and wait_closed() on them

