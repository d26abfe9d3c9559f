"""The status stream: pings, reconnects after a drop, deadlines, keep-alive vs read timeout."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fal_fakes import FakeFal

from tools.fal import FalClient
from tools.fal import errors as E

EP, RID = "fal-ai/flux/dev", "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"


def _event(state: str, **extra) -> bytes:
    body = {"status": state, "request_id": RID, "logs": [], "metrics": {}, **extra}
    return f"data: {json.dumps(body)}\n\n".encode()


class Chunks(httpx.AsyncByteStream):
    """Yields chunks, then optionally breaks like a dropped connection."""

    def __init__(self, chunks: list[bytes], drop: bool = False) -> None:
        self.chunks, self.drop = chunks, drop

    async def __aiter__(self):
        for c in self.chunks:
            yield c
        if self.drop:
            raise httpx.RemoteProtocolError("peer closed connection")


def _sse(stream: httpx.AsyncByteStream) -> httpx.Response:
    return httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})


async def _collect(fal: FalClient, **kw) -> list[str]:
    return [s.status async for s in fal.stream_status(EP, RID, **kw)]


async def test_pings_are_skipped_and_stream_ends_at_completed():
    seen = []

    def handler(request):
        seen.append(request)
        return _sse(Chunks([b": ping\n\n", _event("IN_QUEUE", queue_position=2),
                            b": ping\n\n: ping\n\n", _event("IN_PROGRESS"),
                            _event("COMPLETED", metrics={"inference_time": 1.0}),
                            _event("IN_PROGRESS")]))  # after COMPLETED: never read

    async with FalClient(FakeFal().config(), transport=httpx.MockTransport(handler)) as fal:
        assert await _collect(fal) == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert len(seen) == 1
    assert seen[0].url.path == f"/fal-ai/flux/requests/{RID}/status/stream"
    assert seen[0].url.params["logs"] == "1"
    assert seen[0].headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("drop", [True, False])
async def test_reconnects_after_a_dropped_or_closed_stream(drop):
    seen = []

    def handler(request):
        seen.append(request)
        if len(seen) == 1:
            return _sse(Chunks([_event("IN_QUEUE", queue_position=0)], drop=drop))
        if len(seen) == 2:
            raise httpx.ConnectError("refused", request=request)
        return _sse(Chunks([_event("IN_PROGRESS"), _event("COMPLETED")]))

    async with FalClient(FakeFal().config(), transport=httpx.MockTransport(handler)) as fal:
        assert await _collect(fal, deadline_s=5) == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert len(seen) == 3


async def test_deadline_while_the_stream_is_silent():
    never = asyncio.Event()

    class Silent(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield _event("IN_PROGRESS")
            await never.wait()
            yield b""

    def handler(request):
        return _sse(Silent())

    got: list[str] = []
    async with FalClient(FakeFal().config(), transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.FalTimeoutError) as info:
            async with asyncio.timeout(5):
                async for st in fal.stream_status(EP, RID, deadline_s=0.2):
                    got.append(st.status)
    assert got == ["IN_PROGRESS"] and info.value.request_id == RID


async def test_deadline_while_the_stream_keeps_dropping():
    def handler(request):
        return _sse(Chunks([_event("IN_QUEUE", queue_position=1)], drop=True))

    async with FalClient(FakeFal().config(), transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(E.FalTimeoutError):
            async with asyncio.timeout(5):
                await _collect(fal, deadline_s=0.3)


@pytest.mark.parametrize("status, cls", [(404, E.NotFoundError), (401, E.AuthError)])
async def test_final_http_errors_are_raised(status, cls):
    def handler(request):
        return httpx.Response(status, json={"detail": "nope"})

    async with FalClient(FakeFal().config(), transport=httpx.MockTransport(handler)) as fal:
        with pytest.raises(cls):
            await _collect(fal)


async def test_wrong_content_type_and_bad_event_are_typed():
    def plain(request):
        return httpx.Response(200, json={"status": "COMPLETED"})

    def garbage(request):
        return _sse(Chunks([b"data: {not json\n\n"]))

    for handler in (plain, garbage):
        async with FalClient(FakeFal().config(),
                             transport=httpx.MockTransport(handler)) as fal:
            with pytest.raises(E.InvalidResponseError):
                await _collect(fal)


async def test_pings_keep_a_slow_stream_alive_past_the_read_timeout():
    """A real loopback socket: pings every 50 ms, read timeout 0.3 s, COMPLETED after ~0.8 s."""

    connections = []

    async def serve(reader, writer):
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")

        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        writer.write(chunk(_event("IN_PROGRESS")))
        for _ in range(16):
            await asyncio.sleep(0.05)
            writer.write(chunk(b": ping\n\n"))
            await writer.drain()
        writer.write(chunk(_event("COMPLETED")) + b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = FakeFal().config(FAL_QUEUE_BASE_URL=f"http://127.0.0.1:{port}", FAL_READ_TIMEOUT_S=0.3)
    try:
        async with FalClient(cfg) as fal:
            assert await _collect(fal, deadline_s=10) == ["IN_PROGRESS", "COMPLETED"]
        assert len(connections) == 1  # never timed out and reconnected
    finally:
        server.close()
        await server.wait_closed()
