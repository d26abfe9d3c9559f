"""Benchmark: sandbox status polls per second on loopback with 100 jobs in flight.

The sandbox runs in its own process (uvicorn, manual clock, so the 100 jobs stay queued or
running); concurrent async clients poll their statuses for a fixed number of requests. Two
clients are measured: a lean keep-alive HTTP/1.1 client on raw asyncio streams (what the server
can take) and httpx (what a real Python client sees; on two cores httpx itself is the limit).
Side by side in the same run, the same clients fetch the JWKS (a static answer through the
same server stack), so the ratio shows what the queue hot path costs over the framework floor.
Goal: >= 1,000 status polls per second.

    .venv/bin/python bench/sandbox.py [--requests 6000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import subprocess
import sys
import time

import httpx

GOAL = 1000.0
SERVER = """
import sys
from sandbox.config import SandboxConfig
from sandbox.server import serve
serve("127.0.0.1", 0, SandboxConfig(manual_clock=True, concurrency_limit=10),
      on_ready=lambda url, cert: (print(url, flush=True)))
"""


def start_server() -> tuple[subprocess.Popen[str], str]:
    """Start the sandbox in a child process; returns it and its URL."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("sandbox did not start")
    return proc, url


async def wait_ready(client: httpx.AsyncClient) -> None:
    """Poll the state control until the server answers (bounded)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if (await client.get("/_sandbox/state")).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise SystemExit("sandbox not ready")


async def hammer(client: httpx.AsyncClient, urls: list[str], total: int, concurrency: int,
                 expect: tuple[int, ...]) -> float:
    """Issue `total` GETs over `urls` from `concurrency` tasks; returns requests per second."""
    counter = itertools.count()
    bad = 0

    async def worker() -> None:
        nonlocal bad
        while (i := next(counter)) < total:
            r = await client.get(urls[i % len(urls)])
            if r.status_code not in expect:
                bad += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    if bad:
        raise SystemExit(f"{bad} unexpected responses")
    return total / elapsed


async def raw_hammer(url: str, paths: list[str], total: int, concurrency: int, expect: bytes) -> float:
    """Like hammer(), over raw keep-alive connections (one per task); returns requests per second."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    counter = itertools.count()
    bad = 0

    async def worker() -> None:
        nonlocal bad
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while (i := next(counter)) < total:
                path = paths[i % len(paths)]
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Key bench:secret\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 " + expect):
                    bad += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    if bad:
        raise SystemExit(f"{bad} unexpected responses")
    return total / elapsed


async def main(requests: int, concurrency: int, jobs: int) -> None:
    """Run the benchmark and print the figures."""
    proc, url = start_server()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(base_url=url, limits=limits, headers={"Authorization": "Key bench:secret"},
                                     timeout=30) as client:
            await wait_ready(client)
            status_urls = []
            for i in range(jobs):
                r = await client.post("/fal-ai/flux/dev", json={"prompt": f"job {i}"})
                status_urls.append(r.json()["status_url"] + "?logs=1")
            await client.post("/_sandbox/clock/advance", json={"seconds": 1.0})  # some start running
            state = (await client.get("/_sandbox/state")).json()
            assert state["in_flight"] == jobs, state
            paths = [u.split(url, 1)[1] for u in status_urls]
            jwks = "/.well-known/jwks.json"
            await hammer(client, status_urls, min(500, requests), concurrency, (202,))  # warm-up
            raw = {"status": await raw_hammer(url, paths, requests, concurrency, b"202"),
                   "static": await raw_hammer(url, [jwks], requests, concurrency, b"200")}
            lib = {"status": await hammer(client, status_urls, requests, concurrency, (202,)),
                   "static": await hammer(client, [url + jwks], requests, concurrency, (200,))}
            assert (await client.get("/_sandbox/state")).json()["in_flight"] == jobs
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"jobs in flight: {jobs}; requests per run: {requests}; concurrency: {concurrency}")
    print(f"{'client':8} {'status polls/s':>15} {'JWKS GETs/s':>12} {'status/JWKS':>12} {'status/goal':>12}")
    for name, figures in (("raw", raw), ("httpx", lib)):
        polls, floor = figures["status"], figures["static"]
        print(f"{name:8} {polls:15.0f} {floor:12.0f} {polls / floor:12.2f} {polls / GOAL:12.2f}")
    best = raw["status"]
    print(f"server capacity {best:.0f} status polls/s: {'meets' if best >= GOAL else 'BELOW'} the 1,000/s goal")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=100)
    ns = parser.parse_args()
    asyncio.run(main(ns.requests, ns.concurrency, ns.jobs))
