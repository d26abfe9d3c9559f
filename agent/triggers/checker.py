"""The checker process: verify, validate and store webhook deliveries for a listener.

Why a process of its own: a verified delivery costs about twice the CPU of the HTTP work
around it (the Ed25519 verify most of it). In one Python process that work and the event loop
take turns on the GIL and pay a thread wake-up at every hand-off, so the listener used barely
more than one core. Here the listener's event loop only collects the four signed headers and
the raw body and writes them down a Unix socket; this process, on the other core, runs
``check.check_delivery`` on each, stores the verified events and answers with one outcome per
delivery. The listener sends the 2xx only after that answer, and this process answers
"stored" only after the commit that holds the row returned, so the guarantees do not change:
nothing is parsed before its signature verified, and nothing is acknowledged before it is
durable.

The protocol (both ends are this package; ``marshal`` is used for speed and never sees data
from anyone else, only bytes and strings this code put in tuples):

    frame   = 4-byte big-endian length + marshal.dumps(message)
    to the checker:
      ("config", inbox_path, synchronous, shared_writers, settled_as)   once, first
      ("keys", [32-byte public key, ...])                               when the keys change
      ("batch", batch_id, received_at, [(request_id, user_id, timestamp, signature, body,
                                          endpoint_id), ...])
          all four headers are there (the listener answers 401 itself when one is missing);
          endpoint_id is the URL's, or None
    from the checker:
      [(batch_id, offset, [(code, reason, new, status), ...]), ...]
          the outcomes of that batch's deliveries offset, offset+1, ...; every delivery is
          answered once, in the order sent

One thread, one loop. Frames queue up in order; each round takes up to ROUND_ITEMS deliveries
off the front (splitting a batch if need be), checks them, stores the good ones in one
transaction and answers them, then takes in whatever frames arrived meanwhile; it blocks only
when nothing is queued. Why a cap: answering everything in hand at once let one big group of
deliveries form and travel together (listener, client, listener, checker), so the checker sat
idle while it was away; capped rounds keep several groups in flight, and rounds much smaller
than the cap pay for more commits. It exits when the listener closes the socket (or dies: the
kernel closes it then), after storing and answering what it was sent.

A second thread that commits, or one that fsyncs the WAL once per group of NORMAL commits,
both measured slower: the answering thread waited for the GIL while the checking thread held
it. The measurements behind these choices are in docs/webhooks-performance.md.

Run as ``python -m agent.triggers.checker FD`` with FD an inherited socket (intake_process.py
starts it).
"""

from __future__ import annotations

import logging
import marshal
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import VerifyKey

from agent.triggers import gctune
from agent.triggers.check import Outcome, check_delivery
from agent.triggers.inbox import Inbox, NewEvent
from tools.webhooks import HEADER_REQUEST_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_USER_ID

log = logging.getLogger(__name__)

_HEAD = 4
ROUND_ITEMS = 32


def encode(message: Any) -> bytes:
    """One frame: the length, then the marshalled message."""
    data = marshal.dumps(message)
    return len(data).to_bytes(_HEAD, "big") + data


def split_frames(buffer: bytearray) -> list[Any]:
    """Take every complete frame off the front of `buffer` (in place); return their messages."""
    out = []
    start, size = 0, len(buffer)
    while size - start >= _HEAD:
        length = int.from_bytes(buffer[start:start + _HEAD], "big")
        end = start + _HEAD + length
        if end > size:
            break
        out.append(marshal.loads(buffer[start + _HEAD:end]))
        start = end
    if start:
        del buffer[:start]
    return out


class Checker:
    """The state of one checker process: `check` a round of messages, then `store` it."""

    def __init__(self) -> None:
        self.inbox: Any = None
        self.keys: list[Any] = []
        self.settled_as: str | None = None

    def check(self, messages: list[Any]) -> Round:
        """Verify and parse the deliveries in `messages` (config and key frames apply in order).

        A batch message here carries the offset of its first delivery in the batch as sent.
        """
        now = time.time()  # the signature window is checked against real time, always
        round_ = Round()
        for message in messages:
            kind = message[0]
            if kind == "config":
                _, path, synchronous, shared_writers, self.settled_as = message
                self.inbox = Inbox(path, synchronous=synchronous, shared_writers=shared_writers)
                continue
            if kind == "keys":
                self.keys = [VerifyKey(bytes(k)) for k in message[1]]
                continue
            _, batch_id, received_at, items, offset = message
            results: list[Any] = []
            for rid, uid, ts, sig, body, endpoint_id in items:
                signed = {HEADER_REQUEST_ID: rid, HEADER_USER_ID: uid, HEADER_TIMESTAMP: ts, HEADER_SIGNATURE: sig}
                checked = check_delivery(signed, body, self.keys, now=now, received_at=received_at,
                                         endpoint_id=endpoint_id)
                if isinstance(checked, Outcome):
                    results.append((checked.code, checked.reason, False, None))
                    continue
                round_.slots.append((results, len(results)))
                results.append(None)
                round_.events.append(checked)
            round_.replies.append((batch_id, offset, results))
        return round_

    def store(self, rounds: list[Round]) -> list[Any]:
        """Commit the events of `rounds` in one transaction; return their replies, in order."""
        events = [ev for r in rounds for ev in r.events]
        slots = [slot for r in rounds for slot in r.slots]
        if events:
            try:
                if self.inbox is None:
                    raise RuntimeError("no config frame before the first batch")
                news = self.inbox.add_many(events, settled_as=self.settled_as)
                for (results, index), event, new in zip(slots, events, news):
                    results[index] = (200, None, new, event.status)
            except Exception as exc:  # the listener answers 503 and fal retries
                log.error("webhook checker: storing %d events failed: %s: %s", len(events), type(exc).__name__, exc)
                for results, index in slots:
                    results[index] = (503, "storage_unavailable", False, None)
                if self.inbox is not None:
                    self.inbox.close()  # reopened on the next batch
        return [reply for r in rounds for reply in r.replies]


@dataclass
class Round:
    """The deliveries of one read: replies to send, events to store and where their outcomes go."""

    replies: list[tuple[int, int, list[Any]]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    slots: list[tuple[list[Any], int]] = field(default_factory=list)


def _read(sock: socket.socket, buffer: bytearray, *, block: bool) -> list[Any] | None:
    """Every whole frame waiting (blocking for at least one if `block`); None at EOF."""
    messages: list[Any] = []
    while True:
        try:
            chunk = sock.recv(1 << 20, 0 if block and not messages else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return messages
        if not chunk:
            return messages or None  # EOF: whatever came before it is still answered
        buffer += chunk
        messages.extend(split_frames(buffer))
        if len(messages) > 64:
            return messages


def _take(queue: deque[list[Any]], limit: int) -> list[Any]:
    """Up to `limit` deliveries off the front of `queue` (config and key frames ride along)."""
    taken: list[Any] = []
    count = 0
    while queue and count < limit:
        head = queue[0]
        if head[0] != "batch":
            taken.append(tuple(head))
            queue.popleft()
            continue
        _, batch_id, received_at, items, offset = head
        part = items[offset:offset + limit - count]
        taken.append(("batch", batch_id, received_at, part, offset))
        count += len(part)
        if offset + len(part) >= len(items):
            queue.popleft()
        else:
            head[4] = offset + len(part)
    return taken


def serve(sock: socket.socket, *, round_items: int = ROUND_ITEMS) -> None:
    """Answer the listener on `sock` until it closes the connection (see the module docstring)."""
    checker = Checker()
    buffer = bytearray()
    queue: deque[list[Any]] = deque()
    eof = False
    while True:
        if not eof:
            messages = _read(sock, buffer, block=not queue)
            if messages is None:
                eof = True
            else:
                for message in messages:
                    queue.append([*message, 0] if message[0] == "batch" else list(message))
        if not queue:
            if eof:
                return
            continue
        replies = checker.store([checker.check(_take(queue, round_items))])
        if replies:
            sock.sendall(encode(replies))


def main(argv: list[str]) -> int:
    """The process's entry point: serve the listener on the inherited socket FD (argv[0])."""
    # Its stderr is the listener's: say what went wrong there, marked as this process.
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr)
    if len(argv) != 1 or not argv[0].isdigit():
        log.error("usage: python -m agent.triggers.checker FD")
        return 2
    # Ctrl-C reaches the whole process group: let the listener decide. It closes the socket
    # when it stops, and this process then stores and answers the round in hand and exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gctune.for_serving()
    sock = socket.socket(fileno=int(argv[0]))
    try:
        serve(sock)
    except (BrokenPipeError, ConnectionResetError) as exc:  # the listener died: nobody to answer
        log.info("webhook checker: the listener went away (%s); exiting", type(exc).__name__)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
