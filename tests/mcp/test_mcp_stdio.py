"""The loop's own stdin/stdout for the MCP stdio transport (agent/mcp/stdio.py): lines split as
the SDK's reader splits them, an oversized line dropped without holding it, a terminal or a
file left to the SDK."""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest

from agent.mcp.stdio import OVERSIZED, PipeLines, is_pipe, loop_stdio


async def _lines(chunks: list[bytes], max_line: int = 1 << 20) -> list[str]:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    return [line async for line in PipeLines(reader, max_line=max_line)]


async def test_lines_are_split_across_chunks_and_the_last_one_may_lack_its_newline():
    got = await _lines([b'{"a":', b'1}\n{"b":2}\n\n', b'{"c"', b":3}"])
    assert got == ['{"a":1}\n', '{"b":2}\n', "\n", '{"c":3}']


async def test_bad_utf8_is_replaced_not_fatal():
    assert await _lines([b'{"t":"\xff"}\n']) == ['{"t":"\ufffd"}\n']


async def test_an_oversized_line_becomes_one_unparseable_message_and_the_next_is_intact():
    big = b'{"x":"' + b"y" * 5000 + b'"}\n'
    got = await _lines([big[:1000], big[1000:3000], big[3000:] + b'{"ok":1}\n'], max_line=1024)
    assert got == [OVERSIZED, '{"ok":1}\n']


async def test_pipes_are_served_by_the_loop_and_written_back():
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    try:
        assert is_pipe(in_r) and is_pipe(out_w)
        os.write(in_w, b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
        os.close(in_w)
        in_w = -1
        async with loop_stdio(in_r, out_w) as pipes:
            assert pipes is not None
            stdin, stdout = pipes
            assert [line async for line in stdin] == ['{"jsonrpc":"2.0","id":1,"method":"ping"}\n']
            await stdout.write('{"jsonrpc":"2.0","id":1,"result":{}}\n')
            await stdout.flush()
        assert os.read(out_r, 1000) == b'{"jsonrpc":"2.0","id":1,"result":{}}\n'
        assert os.get_blocking(in_r) and os.get_blocking(out_w)  # left as found
    finally:
        for fd in (in_r, in_w, out_r, out_w):
            if fd >= 0:
                os.close(fd)


async def test_a_regular_file_is_left_to_the_sdk():
    with tempfile.TemporaryFile() as fh:
        assert not is_pipe(fh.fileno())
        async with loop_stdio(fh.fileno(), fh.fileno()) as pipes:
            assert pipes is None


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
async def test_a_character_device_is_left_to_the_sdk():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        async with loop_stdio(fd, fd) as pipes:
            assert pipes is None
    finally:
        os.close(fd)
