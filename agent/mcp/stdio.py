"""stdin and stdout for the MCP stdio transport, read and written by the event loop itself.

The SDK's `stdio_server()` wraps the standard streams in anyio's thread-backed files: every
line read and every reply written and flushed is a hop to a worker thread and back, which on a
busy machine costs more than the rest of a small call. When both streams are pipes or
sockets (as when an MCP client starts the server), these adapters give the SDK the same
duck-typed files (`async for line in stdin`, `await stdout.write(...)`, `await stdout.flush()`)
on the loop's own pipe transports, so `stdio_server(stdin, stdout)` keeps its framing, its
message parsing and its error handling. Anything else (a terminal, a regular file) keeps the
SDK's default: a pipe transport would switch a shared terminal to non-blocking mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator

MAX_LINE_BYTES = 64 * 1024 * 1024
"""A longer line is dropped (as an unparseable message the SDK answers), not buffered."""
OVERSIZED = '{"oversized": true}\n'
CHUNK = 1 << 16


def is_pipe(fd: int) -> bool:
    """Whether `fd` is a pipe or a socket (not a terminal, not a file)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class PipeLines:
    """stdin as an async iterator of text lines (UTF-8, undecodable bytes replaced)."""

    def __init__(self, reader: asyncio.StreamReader, max_line: int = MAX_LINE_BYTES) -> None:
        self._reader = reader
        self._max = max_line
        self._buf = bytearray()
        self._searched = 0
        self._dropping = False

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        while True:
            cut = self._buf.find(b"\n", self._searched)
            if cut >= 0:
                line = bytes(self._buf[:cut + 1])
                del self._buf[:cut + 1]
                self._searched = 0
                if self._dropping or len(line) > self._max:
                    self._dropping = False
                    return OVERSIZED
                return line.decode("utf-8", "replace")
            self._searched = len(self._buf)
            if len(self._buf) > self._max:  # keep reading to its end, holding none of it
                self._buf.clear()
                self._searched = 0
                self._dropping = True
            chunk = await self._reader.read(CHUNK)
            if not chunk:
                rest, self._buf = bytes(self._buf), bytearray()
                if rest and not self._dropping:
                    return rest.decode("utf-8", "replace")
                raise StopAsyncIteration
            self._buf += chunk


class PipeWriter:
    """stdout as the SDK writes it: `write(text)` then `flush()`; flush waits for the pipe."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> int:
        self._writer.write(text.encode("utf-8"))
        return len(text)

    async def flush(self) -> None:
        await self._writer.drain()


@contextlib.asynccontextmanager
async def loop_stdio(stdin_fd: int | None = None, stdout_fd: int | None = None,
                     ) -> AsyncIterator[tuple[PipeLines, PipeWriter] | None]:
    """(stdin, stdout) adapters on the running loop, or None when either is not a pipe.

    The descriptors are duplicated, so closing the transports leaves the process's own
    stdin and stdout open; they are set back to blocking mode on the way out."""
    in_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    out_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
    if not (is_pipe(in_fd) and is_pipe(out_fd)):
        yield None
        return
    loop = asyncio.get_running_loop()
    read_file = os.fdopen(os.dup(in_fd), "rb", buffering=0)
    write_file = os.fdopen(os.dup(out_fd), "wb", buffering=0)
    reader = asyncio.StreamReader(limit=CHUNK * 2, loop=loop)
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_file)
    write_transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, write_file)
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    try:
        yield PipeLines(reader), PipeWriter(writer)
    finally:
        with contextlib.suppress(Exception):  # the client may be gone already
            await asyncio.wait_for(writer.drain(), 2.0)
        read_transport.close()
        write_transport.close()
        for fd in (in_fd, out_fd):
            with contextlib.suppress(OSError):
                os.set_blocking(fd, True)
