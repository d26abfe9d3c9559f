"""Benchmark: status and result round trips, FalClient vs plain httpx vs the official fal_client.

Run: ``.venv/bin/python -m bench.client [--rounds 7 --calls 300]``

A tiny ASGI app (run by uvicorn in a subprocess, so the server does not share our GIL)
answers fal-shaped status and result JSON on 127.0.0.1. The three clients take turns in
every round (the order rotates), so drift and noise hit all of them alike. Printed: the
median over rounds of microseconds per call, and the ratios ours/httpx and ours/fal_client.
Goals: ours/httpx <= 1.10 and ours/fal_client <= 1.00.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

APP = "fal-ai/flux"
ENDPOINT = "fal-ai/flux/dev"
RID = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"
KEY = "bench-key-id:bench-key-secret"


def _bodies(base: str) -> tuple[bytes, bytes]:
    urls = {"response_url": f"{base}/{APP}/requests/{RID}",
            "status_url": f"{base}/{APP}/requests/{RID}/status",
            "cancel_url": f"{base}/{APP}/requests/{RID}/cancel"}
    status = {"status": "COMPLETED", "request_id": RID, **urls, "logs": None,
              "metrics": {"inference_time": 2.41}, "error": None, "error_type": None}
    result = {"images": [{"url": "https://example.invalid/a.png", "width": 1024,
                          "height": 1024, "content_type": "image/png"}],
              "seed": 42, "has_nsfw_concepts": [False], "prompt": "a red fox in the snow",
              "timings": {"inference": 2.41}}
    return json.dumps(status).encode(), json.dumps(result).encode()


def serve(port: int) -> None:
    """The loopback fal: GET .../status and GET .../requests/{id}."""
    import uvicorn

    status_body, result_body = _bodies(f"http://127.0.0.1:{port}")
    headers = [(b"content-type", b"application/json"), (b"x-fal-request-id", RID.encode())]

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = status_body if scope["path"].endswith("/status") else result_body
        await send({"type": "http.response.start", "status": 200,
                    "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(port: int, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("benchmark server did not start")


async def _time(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - start) / calls * 1e6


async def bench(port: int, rounds: int, calls: int) -> dict[str, dict[str, float]]:
    """Median microseconds per call for each (client, operation)."""
    import fal_client
    import fal_client.client as fcc
    import httpx

    from tools.fal import FalClient, FalConfig

    base = f"http://127.0.0.1:{port}"
    fcc.QUEUE_URL_FORMAT = base + "/"  # fal-api.md §1.3: the documented way to redirect it
    status_url, result_url = f"{base}/{APP}/requests/{RID}/status", f"{base}/{APP}/requests/{RID}"
    cfg = FalConfig(FAL_KEY=KEY, FAL_QUEUE_BASE_URL=base)
    ours = FalClient(cfg)
    plain = httpx.AsyncClient(headers={"Authorization": f"Key {KEY}"},
                              timeout=httpx.Timeout(30.0, connect=5.0))
    theirs = fal_client.AsyncClient(key=KEY)
    handle = await theirs.get_handle(ENDPOINT, RID)

    async def plain_status():
        r = await plain.get(status_url)
        r.raise_for_status()
        return r.json()

    async def plain_result():
        r = await plain.get(result_url)
        r.raise_for_status()
        return r.json()

    async def fal_result():
        # handle.get() = poll status until COMPLETED, then this exact request; timing only the
        # result fetch keeps the comparison to one round trip each.
        r = await fcc._async_maybe_retry_request(handle.client, "GET", handle.response_url,
                                                 timeout=fcc.QUEUE_POLL_TIMEOUT)
        fcc._raise_for_status(r)
        return r.json()

    ops: dict[str, dict[str, Callable[[], Awaitable[object]]]] = {
        "status": {"httpx": plain_status, "ours": lambda: ours.status(ENDPOINT, RID),
                   "fal_client": lambda: theirs.status(ENDPOINT, RID)},
        "result": {"httpx": plain_result, "ours": lambda: ours.result(ENDPOINT, RID),
                   "fal_client": fal_result},
    }
    samples: dict[str, dict[str, list[float]]] = {op: {k: [] for k in fns} for op, fns in ops.items()}
    for fns in ops.values():  # warm up connections and caches
        for fn in fns.values():
            await _time(fn, 50)
    for r in range(rounds):
        for op, fns in ops.items():
            names = list(fns)
            names = names[r % len(names):] + names[: r % len(names)]
            for name in names:
                samples[op][name].append(await _time(fns[name], calls))
    await ours.aclose()
    await plain.aclose()
    return {op: {k: statistics.median(v) for k, v in per.items()} for op, per in samples.items()}


def report(results: dict[str, dict[str, float]]) -> str:
    """A small table of µs per call and the two ratios."""
    lines = [f"{'op':<8}{'httpx us':>11}{'ours us':>11}{'fal_client us':>15}"
             f"{'ours/httpx':>12}{'ours/fal_client':>17}"]
    for op, r in results.items():
        lines.append(f"{op:<8}{r['httpx']:>11.1f}{r['ours']:>11.1f}{r['fal_client']:>15.1f}"
                     f"{r['ours'] / r['httpx']:>12.3f}{r['ours'] / r['fal_client']:>17.3f}")
    lines.append("goals: ours/httpx <= 1.10, ours/fal_client <= 1.00")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start the loopback server, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.client", "--serve", str(port)])
    try:
        _wait_up(port)
        results = asyncio.run(bench(port, args.rounds, args.calls))
    finally:
        server.terminate()
        server.wait(10)
    print(f"{args.rounds} rounds x {args.calls} calls per client and op, loopback uvicorn")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
