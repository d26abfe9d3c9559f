"""`webhooks serve --workers N`: N listener processes sharing one listening socket.

Why processes: a verified delivery costs several times the CPU of answering a bare POST
(Ed25519, parsing, the commit), and one Python process cannot spread that over cores without
paying for thread hand-offs and the GIL. Here the parent binds the socket, then forks N children that
each ``accept()`` on it with their own event loop, JWKS cache and inbox connection (SQLite WAL,
one file; ``busy_timeout`` makes concurrent commits wait for each other, never fail).

Only worker 0 runs the action worker and the schedules, so a rule or a schedule never runs
twice; the others store events ``pending`` and poke worker 0 through a pipe (one byte per
stored batch) so it does not wait for its idle poll. A duplicate delivery that lands on
another worker is still caught: the inbox's primary key on request_id is the authority.

Each worker gets its own listening socket on the same port (SO_REUSEPORT, all bound by the
parent before the first fork, so the port never stops answering): the kernel then spreads
connections over the workers. With one shared socket, asyncio's accept loop lets whichever
process wakes first take a whole burst of connections, and a benchmark's keep-alive clients
all ended up on one worker. Without SO_REUSEPORT the workers share the one socket.

The parent only forwards SIGINT/SIGTERM and waits; if one child dies the others are stopped,
and children ask the kernel to SIGTERM them should the parent die first (Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

from agent.triggers.listener import Listener

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM this process when its parent exits (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError) as exc:  # the parent's SIGTERM forwarding still stops it
        log.debug("webhook worker: PR_SET_PDEATHSIG unavailable: %s", exc)


def _poke(fd: int) -> Callable[[], None]:
    """on_stored for a secondary worker: one byte down the pipe wakes worker 0."""
    def poke() -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(fd, b"!")  # a full pipe means a wake is pending already
    return poke


def _listen_for_pokes(fd: int, wake: Callable[[], None]) -> Callable[[asyncio.Event], Awaitable[None]]:
    """A background job for worker 0: wake its action worker whenever a sibling stored events."""
    async def job(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()

        def readable() -> None:
            with contextlib.suppress(BlockingIOError):
                if os.read(fd, 4096):
                    wake()

        loop.add_reader(fd, readable)
        try:
            await stop.wait()
        finally:
            loop.remove_reader(fd)
    return job


def _child(index: int, build: Callable[[bool], Listener], serve: Callable[[Listener, socket.socket], None],
           sock: socket.socket, pipe: tuple[int, int]) -> int:
    """Body of worker `index` after the fork."""
    _die_with_parent()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # uvicorn installs its own once serving
    read_fd, write_fd = pipe
    listener = build(index == 0)
    if index == 0:
        os.close(write_fd)
        if listener.worker is not None and listener.worker.rules:
            listener.state.background.append(_listen_for_pokes(read_fd, listener.worker.wake))
    else:
        os.close(read_fd)
        listener.state.on_stored = _poke(write_fd)
    serve(listener, sock)
    return 0


def sibling_sockets(sock: socket.socket, count: int) -> list[socket.socket]:
    """`count` listening sockets on `sock`'s address: `sock` and SO_REUSEPORT siblings if it allows them."""
    from agent.triggers.http_server import bind_socket

    reusable = hasattr(socket, "SO_REUSEPORT") and sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    if not reusable:
        return [sock] * count
    host, port = sock.getsockname()[:2]
    return [sock] + [bind_socket(host, port, reuse_port=True) for _ in range(count - 1)]


def run_workers(count: int, sock: socket.socket, build: Callable[[bool], Listener],
                serve: Callable[[Listener, socket.socket], None]) -> int:
    """Fork `count` workers serving `sock` (bound with reuse_port=True to spread connections).

    `build(primary)` makes each worker's listener after the fork; only the primary runs actions.
    """
    socks = sibling_sockets(sock, count)
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    sys.stdout.flush()
    sys.stderr.flush()
    children: list[int] = []
    for index in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for other in {id(s): s for s in socks if s is not socks[index]}.values():
                    other.close()
                code = _child(index, build, serve, socks[index], (read_fd, write_fd))
            except BaseException as exc:  # report it; never return into the parent's code
                log.error("webhook worker %d failed: %s: %s", index, type(exc).__name__, exc)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    for each in {id(s): s for s in socks}.values():
        each.close()
    os.close(read_fd)
    os.close(write_fd)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = 0
    remaining = set(children)
    while remaining:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        remaining.discard(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code not in (0, -signal.SIGTERM, -signal.SIGINT) and code == 0:
            code = 1
            forward(signal.SIGTERM, None)  # one worker failed: do not limp on with the rest
    return code
