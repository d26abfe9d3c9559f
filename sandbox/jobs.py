"""One queue request and how it looks on the wire at a given sandbox time."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from sandbox.catalog import Endpoint

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
CANCELLED_DETAIL = "Request was cancelled by the user."


def iso(ts: float) -> str:
    """ISO-8601 (UTC, microseconds, no zone suffix) as fal's log timestamps look."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def jitter(request_id: str) -> float:
    """A stable factor in [0.9, 1.1) so durations vary per request, reproducibly."""
    h = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:2], "big")
    return 0.9 + 0.2 * h / 65536


@dataclass(eq=False)
class Job:
    """A queue request: its input, its schedule and, once finished, its replayable result."""

    request_id: str
    endpoint: Endpoint
    key_id: str
    input: Any
    base_url: str
    seq: int
    priority: int
    submitted_at: float
    eligible_at: float
    start_deadline: float | None
    webhook_url: str | None
    input_errors: list[dict[str, Any]]
    run_s: float
    state: str = IN_QUEUE
    started_at: float | None = None
    completed_at: float | None = None
    expires_at: float | None = None
    error: str | None = None
    error_type: str | None = None
    inference_time: float | None = None
    result_status: int = 200
    result_body: Any = None
    result_headers: dict[str, str] = field(default_factory=dict)
    log_messages: list[tuple[str, str]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)
    """Read media inputs (field -> sandbox.inputs.MediaInput) until the job completes."""

    @property
    def ends_at(self) -> float:
        """When the running job finishes (only meaningful IN_PROGRESS)."""
        return (self.started_at or 0.0) + self.run_s

    def urls(self) -> dict[str, str]:
        """The three queue URLs, always on owner/app (sub-path dropped)."""
        base = f"{self.base_url}/{self.endpoint.app_id}/requests/{self.request_id}"
        return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}

    def logs(self, now: float) -> list[dict[str, Any]]:
        """Log lines printed so far: spread over the run, so they accumulate while IN_PROGRESS."""
        if self.started_at is None or not self.log_messages:
            return []
        span = self.run_s
        n = len(self.log_messages)
        out = []
        for k, (level, message) in enumerate(self.log_messages):
            ts = self.started_at + span * k / n
            if ts > now or (self.completed_at is not None and ts > self.completed_at):
                break
            out.append({"message": message, "level": level, "source": "USER", "timestamp": iso(ts), "labels": {}})
        return out

    def next_log_at(self, now: float) -> float | None:
        """When the next log line appears while running (None if no more)."""
        if self.started_at is None or self.completed_at is not None or not self.log_messages:
            return None
        n = len(self.log_messages)
        for k in range(n):
            ts = self.started_at + self.run_s * k / n
            if ts > now:
                return ts
        return None

    def status_body(self, now: float, position: int | None, with_logs: bool) -> dict[str, Any]:
        """The §2.3 status object."""
        body: dict[str, Any] = {"status": self.state, "request_id": self.request_id, **self.urls()}
        if self.state == IN_QUEUE:
            body["queue_position"] = position if position is not None else 0
        body["logs"] = self.logs(now) if with_logs else None
        if self.state == COMPLETED:
            body["metrics"] = {"inference_time": self.inference_time} if self.inference_time is not None else {}
            body["error"] = self.error
            body["error_type"] = self.error_type
        else:
            body["metrics"] = {}
        return body

    def webhook_body(self) -> dict[str, Any]:
        """The §4.3 webhook body (not yet serialised)."""
        ok = self.result_status < 400
        return {"error": None if ok else f"Invalid status code: {self.result_status}",
                "gateway_request_id": self.request_id, "payload": self.result_body,
                "request_id": self.request_id, "status": "OK" if ok else "ERROR"}
