"""The queue: a small discrete-event simulation driven by the sandbox clock.

Each request first calls `advance(now)`, which replays every start, completion and deadline
due up to `now`, in time order. So the state is exact at any clock reading, and when nothing is
due the call is one comparison (the hot path of status polling). When served, the sandbox's
ticker (`SandboxState._tick_forever`) calls the same `advance` at `next_event()`, so jobs also
move with nobody asking; `on_change` (submit, cancel) tells it the schedule changed.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from typing import Any

from sandbox import results, schemas
from sandbox.catalog import Endpoint
from sandbox.config import SandboxConfig
from sandbox.inputs import MediaInput
from sandbox.jobs import CANCELLED_DETAIL, COMPLETED, IN_PROGRESS, IN_QUEUE, Job, jitter
from sandbox.media import MediaStore

_LARGE_RESULT = 10 * 1024


class QueueManager:
    """Jobs by request id, a FIFO (by priority) per key, and the running set per key."""

    def __init__(self, config: SandboxConfig, media: MediaStore,
                 on_complete: Callable[[Job], None] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.config = config
        self.media = media
        self.on_complete = on_complete
        self.on_change = on_change
        """Called after submit/cancel changed the schedule (the state pokes the clock with it)."""
        self.jobs: dict[str, Job] = {}
        self._queued: dict[str, list[Job]] = {}
        self._running: dict[str, list[Job]] = {}
        self._seq = 0
        self._next_event = math.inf
        self._sim = -math.inf  # time of the last transition applied; a freed slot is reused from then

    # -- submission ---------------------------------------------------------------------------
    def submit(self, endpoint: Endpoint, body: Any, *, key_id: str, base_url: str, now: float,
               priority: str = "normal", start_timeout_s: float | None = None,
               webhook_url: str | None = None, errors: list[dict[str, Any]] | None = None,
               media: dict[str, MediaInput] | None = None) -> Job:
        """Queue a job; bad input (`errors`, checked here when None) is accepted and fails when a
        runner picks it up. `media` holds the read media inputs until the job completes."""
        self.advance(now)
        rid = str(uuid.uuid4())
        if errors is None:
            errors = schemas.validate_input(endpoint.family, body)
        self._seq += 1
        run_s = self.config.invalid_input_duration_s if errors else endpoint.duration_s * jitter(rid)
        job = Job(request_id=rid, endpoint=endpoint, key_id=key_id, input=body, base_url=base_url,
                  seq=self._seq, priority=0 if priority == "normal" else 1, submitted_at=now,
                  eligible_at=now + self.config.queue_delay_s,
                  start_deadline=None if start_timeout_s is None else now + start_timeout_s,
                  webhook_url=webhook_url, input_errors=errors, run_s=run_s, media=media or {})
        if errors:
            job.log_messages = [("INFO", "Validating input"),
                                ("ERROR", f"Input validation failed with {len(errors)} error(s)")]
        else:
            job.log_messages = [("INFO", m) for m in results.log_messages(endpoint, schemas.with_defaults(
                endpoint.family, body))]
        self.jobs[rid] = job
        queue = self._queued.setdefault(key_id, [])
        queue.append(job)
        queue.sort(key=lambda j: (j.priority, j.seq))
        self._reschedule()
        self._changed()
        return job

    # -- lookups ------------------------------------------------------------------------------
    def get(self, request_id: str, now: float) -> Job | None:
        """The job, or None when unknown or past its retention."""
        job = self.jobs.get(request_id)
        if job is not None and job.expires_at is not None and now >= job.expires_at:
            del self.jobs[request_id]
            return None
        return job

    def position(self, job: Job) -> int | None:
        """0-based place in its key's queue (0 = next to run)."""
        if job.state != IN_QUEUE:
            return None
        queue = self._queued.get(job.key_id, [])
        for i, other in enumerate(queue):
            if other is job:
                return i
        return None

    def in_flight(self) -> int:
        """Jobs not yet COMPLETED."""
        return sum(len(q) for q in self._queued.values()) + sum(len(r) for r in self._running.values())

    def next_event(self) -> float:
        """Sandbox time of the next scheduled transition (inf if none)."""
        return self._next_event

    # -- the simulation -----------------------------------------------------------------------
    def advance(self, now: float) -> list[Job]:
        """Apply every transition due by `now`; returns the jobs that completed."""
        if now < self._next_event:
            return []
        done: list[Job] = []
        while True:
            t, action, job = self._earliest()
            if job is None or t > now:
                break
            self._sim = t
            if action == "start":
                self._start(job, t)
            elif action == "finish":
                self._finish(job, t)
                done.append(job)
            else:
                self._expire(job, t)
                done.append(job)
        self._reschedule()
        return done

    def _earliest(self) -> tuple[float, str, Job | None]:
        best: tuple[float, str, Job | None] = (math.inf, "", None)
        limit = self.config.concurrency_limit
        for running in self._running.values():
            for job in running:
                if job.ends_at < best[0]:
                    best = (job.ends_at, "finish", job)
        for key, queue in self._queued.items():
            if not queue:
                continue
            for job in queue:
                if job.start_deadline is not None and job.start_deadline < best[0]:
                    best = (job.start_deadline, "expire", job)
            if len(self._running.get(key, ())) < limit:
                # A free slot: the head starts once it is eligible (and no earlier than the slot freed).
                head = queue[0]
                t = max(head.eligible_at, self._sim)
                if t < best[0] or (t == best[0] and best[1] == "expire"):
                    best = (t, "start", head)
        return best

    def _reschedule(self) -> None:
        self._next_event = self._earliest()[0]

    def _start(self, job: Job, t: float) -> None:
        self._queued[job.key_id].remove(job)
        job.state = IN_PROGRESS
        job.started_at = t
        self._running.setdefault(job.key_id, []).append(job)

    def _finish(self, job: Job, t: float) -> None:
        self._running[job.key_id].remove(job)
        job.inference_time = round(t - (job.started_at or t), 4)
        if job.input_errors:
            self._complete(job, t, 422, {"detail": job.input_errors}, "Invalid status code: 422",
                           "validation_error", {"X-Fal-Retryable": "false"})
            return
        inp = schemas.with_defaults(job.endpoint.family, job.input)
        body = results.build_output(job.endpoint, inp, job.request_id, job.base_url, self.media,
                                    job.inference_time, job.media)
        self._complete(job, t, 200, body, None, None)

    def _expire(self, job: Job, t: float) -> None:
        self._queued[job.key_id].remove(job)
        self._complete(job, t, 504, {"detail": "Request timed out before a runner could start it.",
                                     "error_type": "request_timeout"},
                       "Request timed out before a runner could start it.", "request_timeout",
                       {"X-Fal-Request-Timeout-Type": "user", "X-Fal-Error-Type": "request_timeout"})

    def _complete(self, job: Job, t: float, status: int, body: Any, error: str | None,
                  error_type: str | None, headers: dict[str, str] | None = None) -> None:
        job.state = COMPLETED
        job.completed_at = t
        job.media = {}  # decoded inputs are not needed any more
        job.result_status, job.result_body = status, body
        job.result_headers = headers or {}
        job.error, job.error_type = error, error_type
        size = len(json.dumps(body))
        job.expires_at = t + (self.config.retention_large_s if size >= _LARGE_RESULT else self.config.retention_s)
        if self.on_complete is not None:
            self.on_complete(job)

    # -- cancel -------------------------------------------------------------------------------
    def cancel(self, job: Job, now: float) -> bool:
        """Cancel a queued or running job (it completes now with an error); False if already done."""
        self.advance(now)
        if job.state == COMPLETED:
            return False
        self._sim = max(self._sim, now)
        if job.state == IN_QUEUE:
            self._queued[job.key_id].remove(job)
        else:
            self._running[job.key_id].remove(job)
            job.inference_time = round(now - (job.started_at or now), 4)
        self._complete(job, now, 400, {"detail": CANCELLED_DETAIL, "error_type": "request_cancelled"},
                       CANCELLED_DETAIL, "request_cancelled", {"X-Fal-Error-Type": "request_cancelled"})
        self._reschedule()
        self._changed()
        return True

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def reset(self) -> None:
        """Forget every job."""
        self.jobs.clear()
        self._queued.clear()
        self._running.clear()
        self._next_event = math.inf
        self._sim = -math.inf
