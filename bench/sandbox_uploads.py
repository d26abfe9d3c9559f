"""Benchmark: the official fal_client's multipart upload into `sandbox --tls`, and the sandbox's memory.

The sandbox runs in its own process (TLS, manual clock). Each round uploads the same file
twice, in alternating order: once with `fal_client.upload_file` (token, multipart create,
10 MiB parts, ten in flight, complete; the module constants REST_URL/CDN_URL point at the
sandbox) and once as one plain httpx `POST /files/upload` (the floor). Printed: seconds for
each, the ratio plain/multipart, and the sandbox process's peak RSS growth (VmHWM), which
stays near a few MiB because every byte streams to disk.
Goal: ratio >= 0.5 and peak RSS growth < 64 MiB for a 150 MiB file.

    .venv/bin/python bench/sandbox_uploads.py [--mib 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER = """
import sys
from pathlib import Path
from sandbox.config import SandboxConfig
from sandbox.server import serve
serve("127.0.0.1", 0, SandboxConfig(manual_clock=True, data_dir=Path(sys.argv[1])), tls=True,
      data_dir=Path(sys.argv[1]), on_ready=lambda url, cert: print(url, cert, flush=True))
"""
CLIENT = """
import json, os, sys, time
import fal_client, fal_client.client as C
C.REST_URL = C.CDN_URL = os.environ["SANDBOX_URL"]
t0 = time.perf_counter()
fal_client.upload_file(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def hwm_kib(pid: int) -> int:
    """Peak resident set of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(work / "data")], stdout=subprocess.PIPE,
                                  text=True, cwd=ROOT)
        assert server.stdout is not None
        url, cert = server.stdout.readline().split()
        path = work / "big.bin"
        with open(path, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(1024 * 1024))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
        env.update(FAL_KEY="bench:secret", SANDBOX_URL=url, SSL_CERT_FILE=cert,
                   FAL_QUEUE_RUN_HOST=url.split("://")[1])
        try:
            with httpx.Client(verify=cert, timeout=120) as http:
                http.post(f"{url}/_sandbox/reset")
                base = hwm_kib(server.pid)
                plain, multi = [], []
                for r in range(args.rounds):
                    for kind in (("plain", "multi") if r % 2 == 0 else ("multi", "plain")):
                        if kind == "plain":
                            t0 = time.perf_counter()
                            tok = http.post(f"{url}/storage/auth/token", params={"storage_type": "fal-cdn-v3"},
                                            json={}, headers={"Authorization": "Key bench:secret"}).json()
                            with open(path, "rb") as fh:
                                reply = http.post(f"{url}/files/upload", content=fh, headers={
                                    "Authorization": f"Bearer {tok['token']}",
                                    "Content-Type": "application/octet-stream", "X-Fal-File-Name": "big.bin"})
                            reply.raise_for_status()
                            plain.append(time.perf_counter() - t0)
                        else:
                            proc = subprocess.run([sys.executable, "-c", CLIENT, str(path)], env=env,
                                                  capture_output=True, text=True, check=True)
                            multi.append(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])
                    http.post(f"{url}/_sandbox/reset")  # delete the round's files
                peak = hwm_kib(server.pid) - base
                parts = args.mib // 10 + (1 if args.mib % 10 else 0)
        finally:
            server.terminate()
            server.wait(10)
    p, m = statistics.median(plain), statistics.median(multi)
    print(f"{args.mib} MiB into sandbox --tls, median of {args.rounds}:")
    print(f"  one plain httpx POST:            {p:.2f} s ({args.mib / p:.0f} MiB/s)")
    print(f"  fal_client multipart ({parts} parts): {m:.2f} s ({args.mib / m:.0f} MiB/s)")
    print(f"  ratio plain/multipart: {p / m:.2f} (goal >= 0.5)")
    print(f"  sandbox peak RSS growth: {peak / 1024:.1f} MiB (goal < 64)")


if __name__ == "__main__":
    main()
