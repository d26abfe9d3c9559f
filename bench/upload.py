"""Benchmark: a 200 MiB multipart upload through FalClient.upload vs one plain httpx POST.

The sandbox runs in its own process on 127.0.0.1 (uvicorn, manual clock). Each round makes
both uploads of the same 200 MiB file to the same server, in alternating order:

* plain: read the file and send it in one ``POST /files/upload`` with httpx (the floor: one
  request, no parts, no part bookkeeping on either side);
* multipart: ``FalClient.upload(path)``: storage token, ``POST /files/upload/multipart``, 20
  parts of 10 MiB read from disk part by part (FAL_UPLOAD_CONCURRENCY in flight), complete.

The ratio is plain seconds / multipart seconds (1.0: multipart as fast as one request).
Goal: median over the rounds >= 0.8.

    .venv/bin/python bench/upload.py [--mib 200] [--rounds 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.fal import FalClient, FalConfig

GOAL = 0.8
KEY = "bench:secret-upload-key"
MIB = 1024 * 1024
SERVER = """
from sandbox.config import SandboxConfig
from sandbox.server import serve
serve("127.0.0.1", 0, SandboxConfig(manual_clock=True, upload_max_bytes={limit}),
      on_ready=lambda url, cert: print(url, flush=True))
"""


def start_server(limit: int) -> tuple[subprocess.Popen[str], str]:
    """Start the sandbox in a child process; returns it and its URL."""
    proc = subprocess.Popen([sys.executable, "-c", SERVER.format(limit=limit)],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("sandbox did not start")
    return proc, url


def make_file(directory: Path, size: int) -> Path:
    """A file of `size` incompressible bytes, written in 8 MiB blocks."""
    path = directory / "bench-upload.bin"
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 8 * MIB)
            fh.write(os.urandom(n))
            left -= n
    return path


async def plain(http: httpx.AsyncClient, url: str, path: Path) -> tuple[float, str]:
    """One POST of the whole file (read included); returns seconds and the access URL."""
    token = (await http.post(f"{url}/storage/auth/token", params={"storage_type": "fal-cdn-v3"},
                             json={}, headers={"Authorization": f"Key {KEY}"})).json()
    start = time.perf_counter()
    data = path.read_bytes()
    r = await http.post(f"{url}/files/upload", content=data, headers={
        "Authorization": f"{token['token_type']} {token['token']}",
        "Content-Type": "application/octet-stream", "X-Fal-File-Name": path.name})
    elapsed = time.perf_counter() - start
    r.raise_for_status()
    return elapsed, r.json()["access_url"]


async def multipart(fal: FalClient, path: Path) -> tuple[float, str, int]:
    """FalClient.upload of the file; returns seconds, the access URL and the part count."""
    await fal.uploader.token()  # the plain side fetches its token untimed too
    start = time.perf_counter()
    up = await fal.upload(path)
    elapsed = time.perf_counter() - start
    if not up.multipart:
        raise SystemExit("expected a multipart upload")
    return elapsed, up.url, up.parts


async def check(http: httpx.AsyncClient, access_url: str, size: int) -> None:
    """The stored file has every byte."""
    r = await http.head(access_url)
    if r.status_code != 200 or int(r.headers.get("content-length", -1)) != size:
        raise SystemExit(f"stored file wrong: {r.status_code} {r.headers.get('content-length')}")


async def main(mib: int, rounds: int, concurrency: int) -> None:
    """Run the rounds and print the figures."""
    size = mib * MIB
    proc, url = start_server(limit=size + MIB)
    config = FalConfig(_env_file=None, FAL_KEY=KEY, FAL_REST_BASE_URL=url, FAL_CDN_BASE_URL=url,
                       FAL_DEADLINE_S=300, FAL_UPLOAD_CONCURRENCY=concurrency)
    ratios: list[float] = []
    rows: list[tuple[int, float, float, int]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = make_file(Path(tmp), size)
            async with httpx.AsyncClient(timeout=300) as http, FalClient(config) as fal:
                for _ in range(50):  # the server is up once the token call answers
                    try:
                        await fal.uploader.token()
                        break
                    except Exception:
                        await asyncio.sleep(0.1)
                for i in range(rounds):
                    if i % 2 == 0:
                        t_plain, u1 = await plain(http, url, path)
                        t_multi, u2, parts = await multipart(fal, path)
                    else:
                        t_multi, u2, parts = await multipart(fal, path)
                        t_plain, u1 = await plain(http, url, path)
                    await check(http, u1, size)
                    await check(http, u2, size)
                    ratios.append(t_plain / t_multi)
                    rows.append((i + 1, t_plain, t_multi, parts))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"file: {mib} MiB; rounds: {rounds}; parts in flight: {concurrency}")
    print(f"{'round':>5} {'plain s':>8} {'plain MiB/s':>12} {'multipart s':>12} "
          f"{'multi MiB/s':>12} {'parts':>6} {'ratio':>6}")
    for (n, tp, tm, parts), ratio in zip(rows, ratios):
        print(f"{n:>5} {tp:>8.2f} {mib / tp:>12.0f} {tm:>12.2f} {mib / tm:>12.0f} {parts:>6} "
              f"{ratio:>6.2f}")
    median = statistics.median(ratios)
    verdict = "met" if median >= GOAL else "NOT met"
    print(f"median ratio plain/multipart time: {median:.2f} (goal >= {GOAL}): {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.mib, args.rounds, args.concurrency))
