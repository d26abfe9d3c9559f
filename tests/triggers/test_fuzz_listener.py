"""Issue 12.8: arbitrary headers, bodies and signatures get a typed JSON error, never a crash or a hang.

Two levels. The ASGI app itself, called in-process with generated scopes and body chunks
(fast, so many examples): every request is answered exactly once, 4xx/5xx with a JSON
``{"error": ...}`` unless it really was a validly signed fal delivery. And the raw protocol:
generated request bytes over a loopback socket to the real uvicorn stack (httptools, and
h11) with its limits (short timeouts, so an incomplete request is a quick 408): the first answer is always
a JSON HTTP response. Example counts and per-request waits are bounded, so the module runs in
seconds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.settings import Settings, WebhookSettings
from agent.triggers.inbox import Inbox
from agent.triggers.listener import build_listener, start_in_thread
from agent.triggers.server import WEBHOOK_PATH
from tests.triggers.support import JwksServer, Signer, fal_body

ANSWER_WITHIN_S = 5.0
SIGNED = ("x-fal-webhook-request-id", "x-fal-webhook-user-id", "x-fal-webhook-timestamp",
          "x-fal-webhook-signature")
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
RAW_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

SIGNER = Signer()
RARELY = st.sampled_from([False, False, False, True])
"""Hypothesis favours the first choice; a junk part shows up in a fraction of the examples."""


# --- what a sender may send ---------------------------------------------------------------

header_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
header_names = st.one_of(st.sampled_from(("content-type", "x-other", "accept", "connection", "expect",
                                          "transfer-encoding", "host", "user-agent")),
                         header_tokens, st.binary(max_size=24).map(lambda b: b.decode("latin-1").lower()))
header_values = st.one_of(st.binary(max_size=80), st.text(max_size=40).map(lambda t: t.encode("utf-8")),
                          st.integers(-10**20, 10**20).map(lambda n: str(n).encode()),
                          st.just(b"ab" * 64), st.just(b" " * 3))
# What the signed headers may say instead of the truth.
signed_values = st.one_of(header_values, st.just(b""), st.sampled_from([b"ab" * 63, b"zz" * 64, b"AB" * 64]),
                          st.integers(0, 2 * 10**9).map(lambda n: str(n).encode()),
                          st.just(str(int(time.time())).encode()))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4), max_leaves=10)


def bodies_for(rid: str) -> st.SearchStrategy[bytes]:
    """Bodies a sender might sign for request `rid`: fal's shape, near misses, and junk."""
    fields = st.fixed_dictionaries({}, optional={
        "request_id": st.one_of(st.just(rid), st.text(max_size=10), json_values),
        "status": st.one_of(st.sampled_from(["OK", "ERROR", "MAYBE", ""]), json_values),
        "payload": json_values, "error": st.one_of(st.none(), st.text(max_size=20), json_values),
        "payload_error": st.one_of(st.none(), st.text(max_size=20)), "gateway_request_id": json_values})
    return st.one_of(
        st.builds(lambda status: fal_body(rid, status=status), st.sampled_from(["OK", "ERROR"])),
        fields.map(lambda doc: json.dumps(doc).encode()),
        st.binary(max_size=600),
        st.sampled_from([b"{}", b"[]", b"null", b"[" * 5000, b'{"a": NaN}', b"\xff\xfe", b'{"request_id": 1e999}']))


bodies = st.text(max_size=12).flatmap(bodies_for)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], list[bytes], bool]:
    """(ASGI headers, body chunks, whether it is a validly signed fal delivery)."""
    ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
    rid = draw(st.one_of(st.just("req-1"), ids, st.text(min_size=1, max_size=20)))
    user = draw(st.one_of(ids, st.text(min_size=1, max_size=10)))
    body = draw(bodies_for(rid))
    headers = [(n.lower().encode(), v.encode("utf-8")) for n, v in SIGNER.headers(body, rid, user_id=user).items()]
    clean = True
    lies = draw(st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True)) if draw(RARELY) else []
    for index in lies:  # lie in some signed headers
        how = draw(st.sampled_from(["replace", "drop", "repeat"]))
        name = headers[index][0]
        if how == "replace":
            headers[index] = (name, draw(signed_values))
        elif how == "drop":
            headers[index] = (b"x-dropped", b"1")
        else:
            headers.append((name, draw(signed_values)))
        clean = False
    extra = draw(st.lists(st.tuples(header_names, header_values), max_size=4))
    headers += [(n.encode("latin-1"), v) for n, v in extra]
    if any(n in (b"content-length", *(s.encode() for s in SIGNED)) for n, _ in headers[4:]):
        clean = False
    length = draw(st.sampled_from(["right", "right", "right", "right", "none", "wrong"]))
    if length == "right":
        headers.append((b"content-length", str(len(body)).encode()))
    elif length == "wrong":
        headers.append((b"content-length", draw(header_values)))
        clean = False
    else:
        clean = False
    headers = draw(st.permutations(headers))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    return headers, chunks, clean


# --- the ASGI app -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asgi_listener(tmp_path_factory):
    inbox = Inbox(tmp_path_factory.mktemp("fuzz") / "inbox.sqlite3")
    listener = build_listener(Settings(no_log=True), jwks=JwksServer(SIGNER).cache(), inbox=inbox, rules=[],
                              schedules=[], transcript=None, check="thread", max_body_bytes=4096)
    loop = asyncio.new_event_loop()
    yield listener, loop
    listener.state.intake.close()
    loop.close()
    inbox.close()


async def call(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = WEBHOOK_PATH,
               method: str = "POST") -> tuple[list[dict], bytes]:
    """One request through the ASGI app; the messages it sent and the body it answered."""
    sent: list[dict] = []
    answered = asyncio.Event()
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    if not pending:
        pending = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict:
        if pending:
            return pending.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8787)}
    await asyncio.wait_for(app(scope, receive, send), ANSWER_WITHIN_S)
    return sent, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def assert_typed(status: int, content_type: bytes | None, body: bytes, *, may_succeed: bool) -> None:
    assert content_type is not None and content_type.startswith(b"application/json"), (status, content_type, body)
    data = json.loads(body)
    if status < 400:
        assert may_succeed and status == 200, (status, body)
        return
    assert status < 600 and isinstance(data, dict) and isinstance(data.get("error"), str), (status, body)


@FUZZ
@given(delivery=deliveries())
def test_any_delivery_through_the_app_gets_one_typed_answer(asgi_listener, delivery):
    listener, loop = asgi_listener
    headers, chunks, clean = delivery
    sent, body = loop.run_until_complete(call(listener.app, headers, chunks))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    status = starts[0]["status"]
    content_type = dict(starts[0]["headers"]).get(b"content-type")
    assert_typed(status, content_type, body, may_succeed=clean)
    if status == 200:
        assert json.loads(body) in ({"received": True}, {"duplicate": True})


@FUZZ
@given(path=st.one_of(st.sampled_from(["/", "/webhooks", "/webhooks/fal/", "/healthz/x", "/%00"]),
                      st.text(max_size=30).map(lambda t: "/" + t)),
       method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW", "POST"]))
def test_other_paths_and_methods_answer_json_too(asgi_listener, path, method):
    listener, loop = asgi_listener
    if (path, method) in ((WEBHOOK_PATH, "POST"), ("/healthz", "GET")):
        return
    sent, body = loop.run_until_complete(call(listener.app, [], [], path=path, method=method))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert_typed(start["status"], dict(start["headers"]).get(b"content-type"), body, may_succeed=False)


# --- the raw protocol ---------------------------------------------------------------------

LIMITS = WebhookSettings(header_timeout_s=0.5, body_timeout_s=0.5, keepalive_timeout_s=0.5,
                         max_header_bytes=4096, max_headers=32, max_body_bytes=4096)


@pytest.fixture(scope="module", params=["httptools", "h11"])
def raw_listener(request, tmp_path_factory):
    inbox = Inbox(tmp_path_factory.mktemp("fuzz-raw") / "inbox.sqlite3")
    limits = LIMITS.model_copy(update={"http": request.param})
    running = start_in_thread(settings=Settings(webhooks=limits, no_log=True), jwks=JwksServer(SIGNER).cache(),
                              inbox=inbox, rules=[], schedules=[], transcript=None, check="thread")
    yield running
    running.stop()
    inbox.close()


token = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
line_bytes = st.binary(max_size=60)


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[bytes, str, bool]:
    """Request bytes (a head, maybe malformed, then a body), the method they name, and whether
    they are a delivery fal could have sent (signed, framed, to the webhook path)."""
    odd = lambda: draw(RARELY)  # noqa: E731 - about one part in five is junk
    method = draw(token) if odd() else draw(st.sampled_from(["POST"] * 6 + ["GET", "PUT", "OPTIONS"]))
    if method.upper() == "HEAD":
        method = "GET"
    target = (draw(line_bytes).decode("latin-1") if odd() else
              draw(st.sampled_from([WEBHOOK_PATH] * 6 + [WEBHOOK_PATH + "?endpoint_id=a/b", "/healthz", "*", "/x"])))
    version = draw(st.sampled_from(["HTTP/1.1"] * 12 + ["HTTP/1.0", "HTTP/2.0", "HTTX/1.1", ""]))
    rid = draw(st.sampled_from(["req-1", "r"]))
    body = draw(bodies_for(rid))
    lines = [f"{method} {target} {version}".encode("latin-1"), b"Host: listener"]
    genuine = method == "POST" and target.startswith(WEBHOOK_PATH) and version.startswith("HTTP/1.")
    if odd():
        genuine = False
    else:
        lines += [f"{k}: {v}".encode() for k, v in SIGNER.headers(body, rid).items()]
    if odd():
        genuine = False
        lines.append(b"Content-Length: " + draw(header_values))
    else:
        lines.append(b"Content-Length: %d" % len(body))
    printable = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.encode)
    extra = draw(st.lists(st.tuples(header_names if odd() else header_tokens, header_values if odd() else printable),
                          max_size=4))
    lines += [n.encode("latin-1") + b": " + v for n, v in extra]
    if odd():
        genuine = False
        lines.append(draw(line_bytes))  # whatever a broken sender puts in a head
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    return data, method, genuine


def read_answer(sock: socket.socket, method: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """The first final answer on `sock` (1xx skipped); fails if none comes within ANSWER_WITHIN_S."""
    deadline = time.monotonic() + ANSWER_WITHIN_S
    buf = b""

    def more() -> bytes:
        left = deadline - time.monotonic()
        assert left > 0, f"no answer within {ANSWER_WITHIN_S} s: {buf[:200]!r}"
        sock.settimeout(left)
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""

    while True:
        while b"\r\n\r\n" not in buf:
            data = more()
            assert data, f"closed without an answer: {buf[:200]!r}"
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        assert parts[0] == b"HTTP/1.1" and parts[1].isdigit(), lines[0]
        status = int(parts[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if status >= 200:
            break
        buf = rest  # 100 Continue: the real answer follows
    length = int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        data = more()
        assert data, "closed mid-answer"
        rest += data
    return status, headers, rest[:length]


@RAW_FUZZ
@given(request=raw_requests())
def test_any_bytes_on_the_wire_get_a_json_http_answer(raw_listener, request):
    data, method, genuine = request
    host, port = raw_listener.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN_S)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send (431 and closed, say): the answer is still there to read
        status, headers, body = read_answer(sock, method)
    finally:
        sock.close()
    if method == "GET" and data.split(b" ", 2)[1:2] == [b"/healthz"]:
        assert status == 200 and json.loads(body)["ok"] is True
        return
    assert_typed(status, headers.get(b"content-type"), body, may_succeed=genuine)
    if status == 200:  # a genuine delivery (extra headers may still ride along)
        assert json.loads(body) in ({"received": True}, {"duplicate": True})
