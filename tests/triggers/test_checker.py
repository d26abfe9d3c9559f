"""The checker process (checker.py, intake_process.py): framing, death, storage failures, secrets."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import deque
from pathlib import Path

import httpx
import pytest

from agent.triggers.checker import _take, encode, split_frames
from agent.triggers.server import WEBHOOK_PATH
from tests.triggers.support import (
    JwksHttpServer,
    failing_inserts,
    fal_body,
    start_listener_process,
)


@pytest.fixture(params=["thread", "process"])
def check(request) -> str:
    return request.param


def test_frames_split_only_when_whole():
    frames = encode(("batch", 1, 2.5, [("r", "u", "1", "ab" * 64, b"{}", None)])) + encode([(1, 0, [])])
    buffer = bytearray(frames[:7])
    assert split_frames(buffer) == [] and len(buffer) == 7  # nothing whole yet, nothing taken
    buffer += frames[7:-1]
    first = split_frames(buffer)
    assert first == [("batch", 1, 2.5, [("r", "u", "1", "ab" * 64, b"{}", None)])]
    buffer += frames[-1:]
    assert split_frames(buffer) == [[(1, 0, [])]] and buffer == bytearray()


def test_rounds_split_batches_and_keep_key_frames_in_order():
    queue = deque([["keys", [b"k1"]], ["batch", 1, 2.0, list("abcde"), 0], ["batch", 2, 3.0, list("xy"), 0],
                   ["keys", [b"k2"]], ["batch", 3, 4.0, list("z"), 0]])
    assert _take(queue, 3) == [("keys", [b"k1"]), ("batch", 1, 2.0, list("abc"), 0)]
    assert _take(queue, 3) == [("batch", 1, 2.0, list("de"), 3), ("batch", 2, 3.0, list("x"), 0)]
    assert _take(queue, 3) == [("batch", 2, 3.0, list("y"), 1), ("keys", [b"k2"]), ("batch", 3, 4.0, list("z"), 0)]
    assert not queue and _take(queue, 3) == []


async def test_a_burst_larger_than_a_round_gets_every_answer_right(make_listener, signer, inbox, check):
    listener, client = make_listener()
    cases = []
    for i in range(100):  # several rounds' worth, sent at once, one forged in every ten
        rid = f"b-{i}"
        body = fal_body(rid)
        headers = signer.headers(body, rid)
        cases.append((rid, body.replace(b"42", b"43") if i % 10 == 3 else body, headers))
    responses = await asyncio.gather(*(client.post(WEBHOOK_PATH, content=b, headers=h) for _, b, h in cases))
    for i, ((rid, _, _), r) in enumerate(zip(cases, responses)):
        expected = (401, {"error": "bad_signature"}) if i % 10 == 3 else (200, {"received": True})
        assert (r.status_code, r.json()) == expected, rid
    assert inbox.count() == 90 and listener.state.received == 90


async def wait_for(condition, timeout_s: float = 10.0) -> None:
    """Let the event loop run until `condition()` holds (it depends on the loop noticing an EOF)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_a_storage_failure_answers_503_and_the_retry_is_stored(make_listener, signer, inbox):
    _, client = make_listener()
    warm = fal_body("warm")
    assert (await client.post(WEBHOOK_PATH, content=warm, headers=signer.headers(warm, "warm"))).status_code == 200
    failing_inserts(inbox.path, True)
    body = fal_body("r1")
    headers = signer.headers(body, "r1")
    first = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert (first.status_code, first.json()) == (503, {"error": "storage_unavailable"})
    assert inbox.get("r1") is None
    failing_inserts(inbox.path, False)
    again = await client.post(WEBHOOK_PATH, content=body, headers=headers)  # fal's retry
    assert (again.status_code, again.json()) == (200, {"received": True})
    assert inbox.get("r1") is not None


@pytest.mark.parametrize("check", ["process"])
async def test_a_dead_checker_fails_what_is_in_flight_then_restarts(make_listener, signer, inbox, check):
    listener, client = make_listener()
    intake = listener.state.intake
    intake.restart_after_s = 0.0
    first = fal_body("first")
    assert (await client.post(WEBHOOK_PATH, content=first, headers=signer.headers(first, "first"))).status_code == 200
    pid = intake.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hold it so the next delivery is surely in flight when it dies
    body = fal_body("second")
    headers = signer.headers(body, "second")
    task = asyncio.create_task(client.post(WEBHOOK_PATH, content=body, headers=headers))
    await wait_for(lambda: bool(intake._pending))
    os.kill(pid, signal.SIGKILL)
    response = await task
    assert (response.status_code, response.json()) == (503, {"error": "storage_unavailable"})
    # fal retries; a new checker takes it
    again = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert (again.status_code, again.json()) == (200, {"received": True})
    assert intake.pid not in (None, pid)
    assert inbox.get("first") is not None and inbox.get("second") is not None


@pytest.mark.parametrize("check", ["process"])
async def test_the_checker_gets_no_secrets_and_stops_with_the_intake(make_listener, signer, monkeypatch, check):
    monkeypatch.setenv("FAL_KEY", "fal-secret-key-for-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-for-test")
    listener, client = make_listener()
    body = fal_body("r1")
    assert (await client.post(WEBHOOK_PATH, content=body, headers=signer.headers(body, "r1"))).status_code == 200
    intake = listener.state.intake
    pid = intake.pid
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = f.read()
    assert b"fal-secret-key-for-test" not in environ and b"sk-secret-for-test" not in environ
    proc = intake._proc
    intake.close()
    assert proc.returncode == 0  # it saw the socket close and exited by itself


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        kids += [int(k) for k in task.read_text().split()]
    return kids


def _gone(pid: int) -> bool:
    try:  # a zombie has exited too (its new parent reaps it)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("check", ["process"])
def test_serve_starts_the_checker_up_front_and_it_never_outlives_the_listener(signer, check):
    jwks = JwksHttpServer(signer)
    proc, url = start_listener_process({**os.environ, "FAL_JWKS_URL": jwks.url})
    try:
        assert httpx.get(f"{url}/healthz").status_code == 200  # answers once startup is done
        checkers = _children(proc.pid)
        assert len(checkers) == 1  # started with the app, before any delivery
        body = fal_body("r1")
        assert httpx.post(f"{url}{WEBHOOK_PATH}", content=body, headers=signer.headers(body, "r1")).status_code == 200
        assert _children(proc.pid) == checkers
        os.kill(proc.pid, signal.SIGKILL)  # the listener alone, not its process group
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not _gone(checkers[0]):  # it sees the socket close and exits by itself
            assert time.monotonic() < deadline, "the checker outlived the listener"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        jwks.close()
