"""The synchronous run host (`fal.run`, §0): `POST /_run/{endpoint id}[/{path}]` answers with the
model output itself once the job is done, as `fal_client.run()` expects.

One listener serves both hosts, so the run host lives under the `/_run` prefix: point the
official client at it with `FAL_RUN_HOST=127.0.0.1:PORT/_run` next to
`FAL_QUEUE_RUN_HOST=127.0.0.1:PORT` (fal_client builds `https://{FAL_RUN_HOST}/{endpoint id}`,
so a path inside the host value works, just as a port does).

A run is a queue job like any other: it waits `queue_delay_s`, counts against the key's
concurrency limit, writes logs and is visible to status/result/cancel under its
`x-fal-request-id`. The handler parks on the sandbox clock until the job completes, with
nobody polling: on a speed clock that takes the job's duration divided by the speed; on a
manual clock the answer is held until the clock is advanced past the job's end (as a `delay`
fault is), so tests decide when it finishes. The reply replays the job's result: 200 with the
output, or the model's error (422 `{"detail": [...]}` for invalid input), a 504 start timeout
(`X-Fal-Request-Timeout`) or a 400 cancellation. Faults use their own op, `run` (a fault
without `ops` hits runs too; `ops=["submit"]` or `["result"]` does not): `delay`,
`rate_limit` and `server_error` strike before the job is queued, `malformed_json` cuts the
reply. Priority and `fal_webhook` are ignored (run requests cannot send webhooks). Input is
checked and media inputs are read exactly as for a queue submit (`create_job`): an uploaded
file's `access_url`, a data: URI or a loopback URL all work here too.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response

from sandbox import catalog
from sandbox.http import caller_or_error, json_response, maybe_malformed, queue_error, state_of
from sandbox.jobs import COMPLETED
from sandbox.routes_queue import _normalise_id, create_job

RUN_PREFIX = "/_run"
METHODS = ["GET", "POST"]


async def run_entry(request: Request) -> Response:
    """Run one request to completion and answer with its result."""
    segs = [s for s in request.path_params.get("path", "").split("/") if s]
    if not segs:
        return queue_error(404, f"Not found: give an endpoint id, e.g. POST {RUN_PREFIX}/fal-ai/flux/dev",
                           "not_found")
    caller = caller_or_error(request, platform=False)
    if isinstance(caller, Response):
        return caller
    endpoint_id = _normalise_id("/".join(segs))
    if segs[-1] == "stream" and catalog.by_id().get("/".join(segs[:-1])) is not None:
        return queue_error(404, "The sandbox does not emulate fal.run streaming (/stream); "
                                "use the queue's status stream", "not_found")
    job = await create_job(request, caller, endpoint_id, "run")
    if isinstance(job, Response):
        return job
    state = state_of(request)
    while True:
        state.pump()
        if job.state == COMPLETED:
            break
        if state.queue.jobs.get(job.request_id) is not job:
            return queue_error(503, "Request was dropped by a sandbox reset", "runner_disconnected",
                               request_id=job.request_id)
        nxt = state.queue.next_event()
        await state.clock.wait(None if math.isinf(nxt) else nxt)
    reply = json_response(job.result_body, job.result_status, request_id=job.request_id,
                          headers=job.result_headers)
    return maybe_malformed(state, "run", endpoint_id, reply)
