"""Reading progress out of queue status updates (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_STEP = re.compile(r"(?:step\s*)?(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_PCT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


@dataclass(frozen=True)
class JobUpdate:
    """What a status update says about a job."""

    request_id: str
    endpoint_id: str = ""
    status: str = ""
    queue_position: int | None = None
    done: float | None = None
    total: float | None = None
    log: str = ""


def log_messages(data: dict[str, Any]) -> list[str]:
    """The messages of a status's `logs` (null, a list of objects, or of strings)."""
    logs = data.get("logs") or []
    out = []
    for item in logs if isinstance(logs, list) else []:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            out.append(item["message"])
        elif isinstance(item, str):
            out.append(item)
    return out


def parse_progress(messages: list[str]) -> tuple[float, float] | None:
    """(done, total) from the newest log line that says `step 3/28` or `45%`."""
    for message in reversed(messages):
        step = _STEP.search(message)
        if step and int(step.group(2)) > 0:
            return float(step.group(1)), float(step.group(2))
        pct = _PCT.search(message)
        if pct:
            return min(float(pct.group(1)), 100.0), 100.0
    return None


def job_update(data: dict[str, Any], args: dict[str, Any] | None = None) -> JobUpdate | None:
    """A JobUpdate from a status/submit payload (plus the call's args); None without an id."""
    args = args or {}
    request_id = data.get("request_id") or args.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return None
    endpoint = data.get("endpoint_id") or args.get("endpoint_id") or ""
    messages = log_messages(data)
    progress = parse_progress(messages)
    status = str(data.get("status") or "")
    if status == "COMPLETED" and not data.get("error"):
        progress = (1.0, 1.0)  # a failed or cancelled request also COMPLETEs: no full bar for it
    qp = data.get("queue_position")
    return JobUpdate(
        request_id=request_id,
        endpoint_id=str(endpoint),
        status=status,
        queue_position=qp if isinstance(qp, int) else None,
        done=progress[0] if progress else None,
        total=progress[1] if progress else None,
        log=messages[-1] if messages else "",
    )
