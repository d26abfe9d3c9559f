"""Issue 12.3: the listener's limits against hostile senders, over real loopback sockets.

Each test runs the listener in a thread (start_in_thread, the real uvicorn + httptools stack)
with short timeouts, talks raw HTTP/1.1 to it and finishes in a few seconds.
"""

from __future__ import annotations

import socket
import time

import pytest

from agent.settings import Settings, WebhookSettings
from agent.triggers.listener import start_in_thread
from agent.triggers.server import Refused, check_head
from tests.triggers.support import fal_body

HEADER_S = 0.6
KEEPALIVE_S = 0.5
BODY_S = 0.8


@pytest.fixture
def listener(jwks_server, inbox):
    settings = Settings(webhooks=WebhookSettings(header_timeout_s=HEADER_S, keepalive_timeout_s=KEEPALIVE_S,
                                                 body_timeout_s=BODY_S, max_header_bytes=16 * 1024, max_headers=64),
                        no_log=True)
    running = start_in_thread(settings=settings, jwks=jwks_server.cache(), inbox=inbox, transcript=None,
                              rules=[], schedules=[])
    yield running
    running.stop()


def connect(listener) -> socket.socket:
    host, port = listener.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, limit_s: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took (bounded)."""
    sock.settimeout(limit_s)
    start, chunks = time.monotonic(), []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks), time.monotonic() - start


def read_response(sock: socket.socket) -> tuple[int, dict[bytes, bytes], bytes]:
    """One response on a kept-alive connection (Content-Length framed)."""
    sock.settimeout(5)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, f"closed before a response: {buf!r}"
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    length = int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        data = sock.recv(65536)
        assert data
        rest += data
    return status, headers, rest[:length]


def request_bytes(body: bytes, headers: dict[str, str], *, length: int | None = None) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    size = len(body) if length is None else length
    return (f"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n{head}\r\n").encode() + body


def test_oversized_header_gets_431_and_the_connection_closes(listener):
    sock = connect(listener)
    try:  # 20 KiB in one header value, its line never ended
        sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\nX-Big: " + b"a" * 20_000)
        answer, took = read_until_closed(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    assert took < HEADER_S  # refused at once, not timed out


def test_oversized_header_sent_in_small_pieces_is_431_too(listener):
    sock = connect(listener)
    try:
        sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\n")
        for i in range(40):  # 40 x 500 bytes of complete header lines: over 16 KiB by the 33rd
            try:
                sock.sendall(f"X-Pad-{i}: ".encode() + b"b" * 490 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        answer, _ = read_until_closed(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]


def test_too_many_header_fields_gets_431(listener):
    sock = connect(listener)
    try:
        fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(70))  # 70 + Host > 64, well under 16 KiB
        sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\n" + fields + b"Content-Length: 0\r\n\r\n")
        answer, _ = read_until_closed(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]


def test_half_a_header_then_silence_is_closed_within_the_header_timeout(listener):
    sock = connect(listener)
    try:
        sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\nX-Fal-Webhook-Requ")
        answer, took = read_until_closed(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert took < HEADER_S + 1.0


def test_a_silent_connection_is_closed_within_the_header_timeout(listener):
    sock = connect(listener)
    try:
        answer, took = read_until_closed(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ") and took < HEADER_S + 1.0


def test_dribbled_header_bytes_do_not_extend_the_header_timeout(listener):
    sock = connect(listener)
    start = time.monotonic()
    closed = False
    try:
        sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\nX-Slow: ")
        sock.settimeout(0.1)
        while time.monotonic() - start < HEADER_S + 2.0:
            try:
                sock.sendall(b"z")
                if sock.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        took = time.monotonic() - start
    finally:
        sock.close()
    assert closed and took < HEADER_S + 1.0


def test_an_idle_keep_alive_connection_is_closed(listener, signer):
    sock = connect(listener)
    try:
        body = fal_body("ka-1")
        sock.sendall(request_bytes(body, signer.headers(body, "ka-1")))
        status, _, _ = read_response(sock)
        assert status == 200
        answer, took = read_until_closed(sock)  # then nothing: the idle timer closes it
    finally:
        sock.close()
    assert answer == b""  # no 408 between requests: nothing was asked
    assert KEEPALIVE_S - 0.2 < took < KEEPALIVE_S + 1.0


def test_a_kept_alive_connection_serves_requests_while_busy(listener, signer, inbox):
    sock = connect(listener)
    try:
        for i in range(5):  # each within the idle timeout of the last
            body = fal_body(f"ka-{i}")
            sock.sendall(request_bytes(body, signer.headers(body, f"ka-{i}")))
            assert read_response(sock)[0] == 200
            time.sleep(KEEPALIVE_S / 3)
    finally:
        sock.close()
    assert inbox.count() == 5


def test_a_dribbled_body_is_closed_within_the_body_timeout(listener, signer):
    sock = connect(listener)
    body = fal_body("slow-body")
    try:
        sock.sendall(request_bytes(b"", signer.headers(body, "slow-body"), length=len(body)) + body[:10])
        answer, took = read_until_closed(sock)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert took < BODY_S + 1.0


@pytest.mark.parametrize("case, status, reason", [
    ("over_limit", 413, "too_large"),
    ("no_length", 411, "length_required"),
    ("no_signature", 401, "missing_header"),
    ("bad_signature_hex", 401, "bad_signature_encoding"),
    ("stale_timestamp", 401, "timestamp_out_of_range"),
    ("duplicate", 401, "duplicate_header"),
])
def test_refused_on_headers_alone_without_the_body_being_read(listener, signer, inbox, case, status, reason):
    body = fal_body("h-1")
    headers = signer.headers(body, "h-1")
    length: int | None = len(body)
    if case == "over_limit":
        length = 20 * 1024 * 1024
    elif case == "no_signature":
        del headers["X-Fal-Webhook-Signature"]
    elif case == "bad_signature_hex":
        headers["X-Fal-Webhook-Signature"] = "zz" * 64
    elif case == "stale_timestamp":
        headers = signer.headers(body, "h-1", timestamp=int(time.time()) - 3600)
    head = request_bytes(b"", headers, length=length)
    if case == "no_length":
        head = head.replace(f"Content-Length: {len(body)}\r\n".encode(), b"Transfer-Encoding: chunked\r\n")
    if case == "duplicate":
        head = head.replace(b"\r\n\r\n", b"\r\nX-Fal-Webhook-User-Id: someone-else\r\n\r\n")
    sock = connect(listener)
    try:
        sock.sendall(head)  # the headers only: the answer must come without a byte of body
        answer, took = read_until_closed(sock)
    finally:
        sock.close()
    first, _, rest = answer.partition(b"\r\n")
    assert first.split()[1] == str(status).encode(), answer[:200]
    assert b"connection: close" in rest.lower()
    assert rest.endswith(f'{{"error":"{reason}"}}'.encode())
    assert took < BODY_S  # answered, not timed out waiting for the body
    assert inbox.count() == 0


def test_header_values_with_trailing_whitespace_verify(listener, signer, inbox):
    body = fal_body("ws-1")
    headers = {k: f"{v} \t " for k, v in signer.headers(body, "ws-1").items()}
    sock = connect(listener)
    try:
        sock.sendall(request_bytes(b"", headers, length=len(body)).replace(b": ", b":   ") + body)  # and leading
        status, _, answer = read_response(sock)
    finally:
        sock.close()
    assert (status, answer) == (200, b'{"received":true}')
    row = inbox.get("ws-1")
    assert row is not None and row.user_id == "user-1"


@pytest.mark.parametrize("case", ["silent", "half_head", "slow_body", "idle_then_half_head"])
def test_h11_has_the_same_header_and_body_timers(jwks_server, inbox, signer, case):
    """FAL_PERSONA_WEBHOOK_HTTP=h11 (no httptools): a sender that stops still gets 408 and is closed."""
    settings = Settings(webhooks=WebhookSettings(http="h11", header_timeout_s=HEADER_S, body_timeout_s=BODY_S,
                                                 keepalive_timeout_s=5.0), no_log=True)
    running = start_in_thread(settings=settings, jwks=jwks_server.cache(), inbox=inbox, transcript=None,
                              rules=[], schedules=[])
    body = fal_body("h11-1")
    try:
        sock = connect(running)
        try:
            if case == "half_head":
                sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\nX-Fal-Webhook-Requ")
            elif case == "slow_body":
                sock.sendall(request_bytes(b"", signer.headers(body, "h11-1"), length=len(body)) + body[:10])
            elif case == "idle_then_half_head":  # one request served, then half of the next
                sock.sendall(request_bytes(body, signer.headers(body, "h11-1")))
                assert read_response(sock)[0] == 200
                sock.sendall(b"POST /webhooks/fal HTTP/1.1\r\nHost: l")
            answer, took = read_until_closed(sock)
        finally:
            sock.close()
    finally:
        running.stop()
    assert answer.startswith(b"HTTP/1.1 408 ") and answer.endswith(b'{"error":"timeout"}'), answer[:200]
    assert took < max(HEADER_S, BODY_S) + 1.0


@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("check", ["thread", "process"])
def test_header_values_lose_surrounding_whitespace_on_either_parser_and_intake(jwks_server, inbox, signer,
                                                                               http, check):
    """RFC 9110 5.5: whitespace around a field value is not part of it, so the signed text has none."""
    settings = Settings(webhooks=WebhookSettings(http=http), no_log=True)
    running = start_in_thread(settings=settings, jwks=jwks_server.cache(), inbox=inbox, transcript=None,
                              rules=[], schedules=[], check=check)
    try:
        body = fal_body("ws-2")
        headers = {k: f"\t {v} \t" for k, v in signer.headers(body, "ws-2", user_id="user-9").items()}
        sock = connect(running)
        try:
            sock.sendall(request_bytes(body, headers).replace(b"Content-Length: ", b"Content-Length:  "))
            status, _, answer = read_response(sock)
        finally:
            sock.close()
    finally:
        running.stop()
    assert (status, answer) == (200, b'{"received":true}')
    row = inbox.get("ws-2")
    assert row is not None and row.user_id == "user-9"


def test_check_head_strips_what_an_asgi_server_left_around_values():
    now = 1_800_000_000.0
    raw = [(b"content-length", b" 10 "), (b"x-fal-webhook-request-id", b" r\t"), (b"x-fal-webhook-user-id", b"\tu"),
           (b"x-fal-webhook-timestamp", b"%d " % now), (b"x-fal-webhook-signature", b" " + b"ab" * 64)]
    size, found = check_head(raw, 100, now)
    assert size == 10
    assert found == {"x-fal-webhook-request-id": "r", "x-fal-webhook-user-id": "u",
                     "x-fal-webhook-timestamp": str(int(now)), "x-fal-webhook-signature": "ab" * 64}


def refused(*args, **kwargs):
    with pytest.raises(Refused) as info:
        check_head(*args, **kwargs)
    return info.value.status, info.value.reason


def test_check_head_is_what_verification_would_say():
    now = 1_800_000_000.0
    good = [(b"content-length", b"10"), (b"x-fal-webhook-request-id", b"r"), (b"x-fal-webhook-user-id", b"u"),
            (b"x-fal-webhook-timestamp", str(int(now)).encode()), (b"x-fal-webhook-signature", b"ab" * 64)]
    size, found = check_head(good, 100, now)
    assert size == 10 and found == {"x-fal-webhook-request-id": "r", "x-fal-webhook-user-id": "u",
                                    "x-fal-webhook-timestamp": str(int(now)),
                                    "x-fal-webhook-signature": "ab" * 64}
    assert check_head(good + [(b"accept", b"a"), (b"accept", b"b"), (b"content-length", b"10")], 100, now)[0] == 10
    assert refused(good, 9, now) == (413, "too_large")
    assert refused(good[1:], 100, now) == (411, "length_required")
    assert refused([(b"content-length", b"1x")] + good[1:], 100, now) == (400, "bad_content_length")
    assert refused(good + [(b"content-length", b"11")], 100, now) == (400, "conflicting_content_length")
    assert refused(good + [good[2]], 100, now) == (401, "duplicate_header")
    assert refused(good[:-1], 100, now) == (401, "missing_header")
    assert refused(good[:-1] + [(b"x-fal-webhook-signature", b"")], 100, now) == (401, "missing_header")
    assert refused(good[:3] + [(b"x-fal-webhook-timestamp", b"+1")] + good[4:], 100, now) == (401, "bad_timestamp")
    assert refused(good, 100, now + 301) == (401, "timestamp_out_of_range")
    assert refused(good[:4] + [(b"x-fal-webhook-signature", b"ab" * 63)], 100, now) == (401, "bad_signature_encoding")
    assert refused(good[:4] + [(b"x-fal-webhook-signature", b"ag" * 64)], 100, now) == (401, "bad_signature_encoding")
