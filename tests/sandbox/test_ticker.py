"""The background ticker of a served sandbox: on a speed clock jobs advance and webhooks go out
with nobody polling; on a manual clock nothing moves until advance(); an error in a tick is
logged and the ticker carries on.

Nothing here sleeps and hopes: every wait polls a condition every 20 ms up to a bound.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from sandbox.config import SandboxConfig
from sandbox.jobs import COMPLETED, IN_PROGRESS, IN_QUEUE
from sandbox.server import RunningSandbox, start_in_thread
from tests.sandbox.test_webhooks import keys_from_jwks, verify

KEY = {"Authorization": "Key test-key:test-secret"}
BOUND_S = 10.0


def wait_until(condition: Callable[[], object], bound: float = BOUND_S, every: float = 0.02) -> bool:
    """True once `condition()` is truthy, False if it is still falsy after `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


class HookReceiver:
    """A loopback HTTP server that records every POST (headers, body) and answers 200."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self) -> list[dict]:
        with self._lock:
            return [json.loads(body) for _, body in self.got]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    r = HookReceiver()
    yield r
    r.close()


def _submit(sb: RunningSandbox, endpoint: str, hook: str | None = None, body: dict | None = None,
            key: dict[str, str] = KEY) -> str:
    params = {"fal_webhook": hook} if hook else None
    r = httpx.post(f"{sb.url}/{endpoint}", params=params, json=body or {"prompt": "a red fox"}, headers=key)
    assert r.status_code == 200, r.text
    return r.json()["request_id"]


def _state_of(sb: RunningSandbox, rid: str) -> str:
    # Reads the job as it stands: no request, no pump, so only the ticker can have moved it.
    return sb.state.queue.jobs[rid].state


def test_real_time_job_completes_and_webhook_arrives_with_nobody_polling(receiver):
    # The default config (speed 1, real time): flux/schnell takes ~1.5 real seconds end to end.
    with start_in_thread(config=SandboxConfig(signing_seed=bytes(range(32)))) as sb:
        assert not sb.state.clock.manual
        submitted = time.monotonic()
        rid = _submit(sb, "fal-ai/flux/schnell", receiver.url)
        seen = {_state_of(sb, rid)}
        assert seen == {IN_QUEUE}

        def arrived() -> bool:
            seen.add(_state_of(sb, rid))
            return bool(receiver.got)

        assert wait_until(arrived), f"no webhook within {BOUND_S}s; job is {_state_of(sb, rid)}"
        took = time.monotonic() - submitted
        assert seen == {IN_QUEUE, IN_PROGRESS, COMPLETED}
        assert took < 5.0, took
        # Checked only now: this is the first request to the sandbox since the submit.
        headers, raw = receiver.got[0]
        jwks = httpx.get(f"{sb.url}/.well-known/jwks.json").json()
        verify(httpx.Request("POST", receiver.url, headers=headers, content=raw), keys_from_jwks(jwks))
        body = json.loads(raw)
        assert body["request_id"] == rid and body["status"] == "OK"
        assert body["payload"]["images"][0]["content_type"] == "image/png"
        assert len(receiver.got) == 1
        assert sb.state.webhooks.deliveries[0].state == "delivered"


def test_default_text_to_image_shows_queue_then_progress_logs_then_completed():
    # What a person watching `status?logs=1` sees at the default speed: a few real seconds in all,
    # IN_QUEUE first, then IN_PROGRESS with the step logs arriving one by one, then COMPLETED.
    with start_in_thread(config=SandboxConfig()) as sb:
        submitted = time.monotonic()
        rid = _submit(sb, "fal-ai/flux/dev")
        trail: list[tuple[str, int]] = []
        with httpx.Client(base_url=sb.url, headers=KEY) as c:
            def done() -> bool:
                r = c.get(f"/fal-ai/flux/requests/{rid}/status", params={"logs": 1})
                body = r.json()
                point = (body["status"], len(body["logs"] or []))
                if not trail or trail[-1] != point:
                    trail.append(point)
                return body["status"] == COMPLETED

            assert wait_until(done), trail
        assert time.monotonic() - submitted < 6.0
        assert trail[0] == (IN_QUEUE, 0)
        running = [n for status, n in trail if status == IN_PROGRESS]
        assert len(running) >= 4, trail  # logs accumulate while running, not all at the end
        assert running == sorted(running) and running[0] < running[-1]
        assert trail[-1][0] == COMPLETED and trail[-1][1] == 7


def test_new_earlier_event_wakes_a_ticker_sleeping_until_a_later_one(receiver):
    # A long video job makes the ticker sleep until its end; a quick job submitted next must
    # still start and finish on time (submit pokes the clock).
    with start_in_thread(config=SandboxConfig(speed=1.0)) as sb:
        long_rid = _submit(sb, "fal-ai/hunyuan-video", body={"prompt": "slow"})
        assert wait_until(lambda: _state_of(sb, long_rid) == IN_PROGRESS)
        assert sb.state.queue.next_event() - sb.state.clock.now() > 60
        quick = _submit(sb, "fal-ai/flux/schnell", receiver.url)
        assert wait_until(lambda: bool(receiver.got)), _state_of(sb, quick)
        assert receiver.bodies()[0]["request_id"] == quick
        assert _state_of(sb, long_rid) == IN_PROGRESS


def test_cancel_lets_the_next_job_start_with_nobody_polling():
    with start_in_thread(config=SandboxConfig(concurrency_limit=1)) as sb:
        first = _submit(sb, "fal-ai/hunyuan-video", body={"prompt": "slow"})
        second = _submit(sb, "fal-ai/flux/schnell")
        assert wait_until(lambda: _state_of(sb, first) == IN_PROGRESS)
        assert _state_of(sb, second) == IN_QUEUE
        r = httpx.put(f"{sb.url}/fal-ai/hunyuan-video/requests/{first}/cancel", headers=KEY)
        assert r.status_code == 202
        assert wait_until(lambda: _state_of(sb, second) == COMPLETED), _state_of(sb, second)


def test_manual_clock_nothing_moves_until_advance(receiver):
    with start_in_thread(config=SandboxConfig(manual_clock=True, queue_delay_s=0.5)) as sb:
        rid = _submit(sb, "fal-ai/flux/schnell", receiver.url)
        # The ticker is parked until the clock changes: a poke (another submit) moves nothing.
        _submit(sb, "fal-ai/flux/schnell")
        time.sleep(0.2)  # a negative check: give a wrongly moving ticker time to show itself
        assert _state_of(sb, rid) == IN_QUEUE and receiver.got == []
        sb.advance(0.4)
        assert _state_of(sb, rid) == IN_QUEUE
        sb.advance(0.2)
        assert _state_of(sb, rid) == IN_PROGRESS and receiver.got == []
        sb.advance(5)  # waits for the webhook attempt it triggers
        assert _state_of(sb, rid) == COMPLETED
        assert [b["request_id"] for b in receiver.bodies()] == [rid]


def test_manual_clock_advanced_from_another_thread_is_applied_by_the_ticker(receiver):
    # clock.advance() (not RunningSandbox.advance) only wakes the ticker; it applies the events.
    with start_in_thread(config=SandboxConfig(manual_clock=True)) as sb:
        rid = _submit(sb, "fal-ai/flux/schnell", receiver.url)
        sb.state.clock.advance(10)
        assert wait_until(lambda: bool(receiver.got)), _state_of(sb, rid)
        assert receiver.bodies()[0]["request_id"] == rid


def test_switching_a_manual_sandbox_to_speed_starts_the_ticker_moving(receiver):
    with start_in_thread(config=SandboxConfig(manual_clock=True)) as sb:
        rid = _submit(sb, "fal-ai/flux/schnell", receiver.url)
        r = httpx.post(f"{sb.url}/_sandbox/clock/speed", json={"speed": 5})
        assert r.status_code == 200
        assert wait_until(lambda: bool(receiver.got)), _state_of(sb, rid)


def test_ticker_survives_an_exception_and_logs_it(receiver, caplog):
    caplog.set_level(logging.ERROR, logger="sandbox.state")
    with start_in_thread(config=SandboxConfig()) as sb:
        state = sb.state
        real_pump = state.pump
        failures = {"left": 2}

        def flaky_pump() -> float:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("injected ticker failure")
            return real_pump()

        state.pump = flaky_pump  # only the ticker pumps: nobody polls in this test
        rid = _submit(sb, "fal-ai/flux/schnell", receiver.url)  # the poke wakes the ticker
        assert wait_until(lambda: bool(receiver.got)), _state_of(sb, rid)
        assert failures["left"] == 0
        assert state._ticker is not None and not state._ticker.done()
        errors = [r for r in caplog.records if r.name == "sandbox.state" and r.exc_info]
        assert len(errors) == 2
        assert "injected ticker failure" in str(errors[0].exc_info[1])
        # And it keeps working afterwards.
        second = _submit(sb, "fal-ai/flux/schnell", receiver.url)
        assert wait_until(lambda: len(receiver.got) == 2), _state_of(sb, second)
