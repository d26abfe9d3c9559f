"""Fault injection: make the sandbox misbehave on purpose, per run or per endpoint.

Kinds:
- `rate_limit`: 429 with `Retry-After` (seconds);
- `server_error`: a burst of 5xx (`status`, default 503); `ingress=True` mimics an nginx
  error page without `x-fal-request-id`, the case fal_client retries;
- `delay`: the answer waits `delay_s` of *sandbox* time first (a manual clock holds it until
  advanced, so timeouts can be tested without sleeping);
- `sse_drop`: the status stream ends after `after_events` events, before COMPLETED;
- `malformed_json`: a 200 whose JSON body is cut short;
- `webhook_fail`: the next `times` delivery attempts fail; `mode="after_send"` (default) sends
  the request and then treats the answer as lost, so receivers see duplicates;
  `mode="before_send"` fails as a refused connection, sending nothing.
`times` is how many requests the fault hits (None: until cleared). `ops` limits it to some of
`submit`, `status`, `stream`, `result`, `cancel`, `run` (the synchronous run host: delay,
rate_limit and server_error before the job is queued, malformed_json on its reply), `platform`,
`webhook`, and the upload routes: `upload_token`, `upload` (a one-request upload, a multipart
create, a storage initiate or PUT), `upload_part`, `upload_complete` (None: all). Upload routes
have no endpoint, so a fault with `endpoint` set never hits them; e.g.
`{"kind": "server_error", "ops": ["upload_part"]}` fails one part with a 503.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("rate_limit", "server_error", "delay", "sse_drop", "malformed_json", "webhook_fail")
OPS = ("submit", "status", "stream", "result", "cancel", "run", "platform", "webhook",
       "upload_token", "upload", "upload_part", "upload_complete")


@dataclass
class Fault:
    """One injected fault."""

    id: int
    kind: str
    endpoint: str | None = None
    times: int | None = 1
    ops: tuple[str, ...] | None = None
    status: int = 503
    retry_after: float = 1.0
    delay_s: float = 1.0
    after_events: int = 1
    ingress: bool = False
    mode: str = "after_send"

    def matches(self, op: str, endpoint: str | None) -> bool:
        """Does this fault apply to `op` on `endpoint`?"""
        if self.ops is not None and op not in self.ops:
            return False
        if self.endpoint is None:
            return True
        if endpoint is None:
            return False
        return endpoint == self.endpoint or endpoint.startswith(self.endpoint + "/")

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the controls API."""
        data = asdict(self)
        data["ops"] = list(self.ops) if self.ops is not None else None
        return data


class Faults:
    """The active faults (thread-safe: tests may set them from another thread)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, kind: str, *, endpoint: str | None = None, times: int | None = 1,
            ops: list[str] | tuple[str, ...] | None = None, **options: Any) -> Fault:
        """Inject a fault; raises ValueError on unknown kinds, ops or options."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if ops is not None:
            bad = [o for o in ops if o not in OPS]
            if bad:
                raise ValueError(f"unknown ops {bad}; expected some of {', '.join(OPS)}")
            ops = tuple(ops)
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer or null")
        allowed = {"status", "retry_after", "delay_s", "after_events", "ingress", "mode"}
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown fault options {sorted(unknown)}")
        if kind == "server_error" and not 500 <= int(options.get("status", 503)) <= 599:
            raise ValueError("server_error status must be 5xx")
        if options.get("mode", "after_send") not in ("after_send", "before_send"):
            raise ValueError("mode must be after_send or before_send")
        if kind == "webhook_fail" and ops is None:
            ops = ("webhook",)
        with self._lock:
            fault = Fault(next(self._ids), kind, endpoint, times, ops, **options)
            self._faults.append(fault)
        return fault

    def take(self, kind: str, op: str, endpoint: str | None) -> Fault | None:
        """The first matching fault of `kind`, using up one of its `times`."""
        if not self._faults:
            return None  # the hot path: no faults set
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.matches(op, endpoint):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def active(self) -> bool:
        """True when any fault is set (cheap; checked on every request)."""
        return bool(self._faults)

    def list(self) -> list[Fault]:
        """Active faults."""
        with self._lock:
            return list(self._faults)

    def clear(self, fault_id: int | None = None) -> int:
        """Remove one fault (by id) or all; returns how many were removed."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]
            return before - len(self._faults)
