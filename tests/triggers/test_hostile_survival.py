"""Issue 12.3: `webhooks serve` under a bounded attack keeps answering real deliveries.

The listener is the real CLI subprocess (checker process, httptools), on loopback. While 100
connections send never-ending headers, 300 dribble theirs, and a few send 20 MB bodies (and
4 MB ones with signatures that will never verify, slowly), signed deliveries on fresh
connections must each be answered 200 within 1 s (p99), and the listener's RSS must stay
within MAX_GROWTH_MB of what it was before the attack (measured: 57 -> 66-67 MB on a 2-core
machine at load 7-9; the bound leaves room for allocator noise, far below the hundreds of MB
the attack cost before the limits). A second test does the red team's
file-descriptor case: `ulimit -n 256` and 300 slow connections.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import time

import pytest

from tests.triggers.support import JwksHttpServer, Signer, fal_body

ATTACK_S = 8.0
# What this attack can make the listener hold: its ~400 connections' heads (16 KiB each at
# most: ~6.5 MB) and the 32 MB budget for bodies over 64 KiB; the rest is slack for the allocator.
MAX_GROWTH_MB = 64
P99_LIMIT_S = 1.0

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for RSS")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(env_extra: dict[str, str], tmp_path, jwks: JwksHttpServer, nofile: int | None = None):
    env = {**os.environ, "FAL_PERSONA_HOME": str(tmp_path), "FAL_JWKS_URL": jwks.url, "FAL_PERSONA_NO_LOG": "1",
           **env_extra}

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    errors = open(tmp_path / "listener.stderr", "w+")  # the listener's stderr, read back if it does not start
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main(sys.argv[1:]))",
         "webhooks", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True,
        preexec_fn=limit, cwd=str(tmp_path))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.match(r"Listening on http://([\d.]+):(\d+)", line)
        if match:
            return proc, match.group(1), int(match.group(2))
    proc.kill()
    proc.wait()
    errors.seek(0)
    raise RuntimeError(f"listener did not start: {errors.read()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Attack:
    """The hostile senders, each a task looping until `stop` is set."""

    def __init__(self, host: str, port: int, signer: Signer) -> None:
        self.host, self.port, self.signer = host, port, signer
        self.stop = asyncio.Event()
        self.closed = {"endless": 0, "slow": 0, "big": 0, "unsigned": 0}
        self.answers: dict[str, dict[str, int]] = {k: {} for k in self.closed}

    async def _open(self):
        return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)

    async def _run(self, kind: str, head: bytes, piece: bytes, every_s: float) -> None:
        while not self.stop.is_set():
            writer = answer = None
            try:
                reader, writer = await self._open()
                answer = asyncio.ensure_future(reader.read(200))  # whatever the listener says, or EOF
                writer.write(head)
                while not self.stop.is_set() and not answer.done():
                    writer.write(piece)
                    await asyncio.wait_for(writer.drain(), 5)
                    await asyncio.sleep(every_s)
                if answer.done():
                    self.closed[kind] += 1
                    self._seen(kind, answer.result())
            except (TimeoutError, OSError):
                self.closed[kind] += 1
                if answer is not None and answer.done() and not answer.exception():
                    self._seen(kind, answer.result())
                await asyncio.sleep(0.05)
            finally:
                if answer is not None and not answer.done():
                    answer.cancel()
                if writer is not None:
                    writer.close()

    def _seen(self, kind: str, data: bytes) -> None:
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "EOF"
        self.answers[kind][status] = self.answers[kind].get(status, 0) + 1

    def tasks(self, endless: int, slow: int, big: int, unsigned: int) -> list[asyncio.Task]:
        start = b"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\n"
        body = fal_body("never")
        signed = self.signer.headers(body, "never")
        signed["X-Fal-Webhook-Signature"] = "ab" * 64  # well-formed, never verifies
        fields = "".join(f"{k}: {v}\r\n" for k, v in signed.items()).encode()
        jobs = []
        for _ in range(endless):  # a header line that never ends, 4 KiB at a time
            jobs.append(self._run("endless", start + b"X-Endless: ", b"a" * 4096, 0.05))
        for _ in range(slow):  # one byte of header every half second
            jobs.append(self._run("slow", start + b"X-Slow: ", b"s", 0.5))
        for _ in range(big):  # 20 MB declared, sent as fast as it goes
            jobs.append(self._run("big", start + fields + b"Content-Length: 20000000\r\n\r\n", b"x" * 65536, 0.0))
        for _ in range(unsigned):  # 4 MB under the limit, headers well-formed, sent slowly
            jobs.append(self._run("unsigned", start + fields + b"Content-Length: 4000000\r\n\r\n",
                                  b"y" * 65536, 0.1))
        return [asyncio.create_task(job) for job in jobs]


async def deliver(host: str, port: int, signer: Signer, rid: str) -> tuple[int, float]:
    """One signed delivery on a fresh connection: (status, seconds from connect to answer)."""
    body = fal_body(rid)
    head = "".join(f"{k}: {v}\r\n" for k, v in signer.headers(body, rid).items())
    data = (f"POST /webhooks/fal HTTP/1.1\r\nHost: listener\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n").encode() + body
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        writer.write(data)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    except (TimeoutError, OSError):
        return 0, time.perf_counter() - t0
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, time.perf_counter() - t0


async def deliveries(host: str, port: int, signer: Signer, prefix: str, stop: asyncio.Event,
                     lanes: int = 3, gap_s: float = 0.02, limit: int | None = None) -> list[tuple[int, float]]:
    results: list[tuple[int, float]] = []
    counter = iter(range(10**6))

    async def lane() -> None:
        while not stop.is_set() and (limit is None or len(results) < limit):
            results.append(await deliver(host, port, signer, f"{prefix}-{next(counter)}"))
            await asyncio.sleep(gap_s)

    await asyncio.gather(*(lane() for _ in range(lanes)))
    return results


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.fixture
def signer_jwks():
    signer = Signer()
    jwks = JwksHttpServer(signer)
    yield signer, jwks
    jwks.close()


async def test_real_deliveries_survive_a_bounded_attack(tmp_path, signer_jwks):
    signer, jwks = signer_jwks
    proc, host, port = start({"FAL_PERSONA_WEBHOOK_HEADER_TIMEOUT_S": "3",
                              "FAL_PERSONA_WEBHOOK_BODY_TIMEOUT_S": "3"}, tmp_path, jwks)
    try:
        warm_stop = asyncio.Event()
        warm = await deliveries(host, port, signer, "warm", warm_stop, limit=60)
        assert all(code == 200 for code, _ in warm)
        await asyncio.sleep(0.5)
        base = rss_mb(proc.pid)
        attack = Attack(host, port, signer)
        tasks = attack.tasks(endless=100, slow=300, big=3, unsigned=3)
        peak = base

        async def sample() -> None:
            nonlocal peak
            while not attack.stop.is_set():
                peak = max(peak, rss_mb(proc.pid))
                await asyncio.sleep(0.1)

        sampler = asyncio.create_task(sample())
        await asyncio.sleep(1.0)  # let the attack build up first
        real = asyncio.create_task(deliveries(host, port, signer, "real", attack.stop))
        await asyncio.sleep(ATTACK_S)
        attack.stop.set()
        results = await real
        await asyncio.wait(tasks + [sampler], timeout=10)
        for task in tasks:
            task.cancel()
    finally:
        stop(proc)
    codes = [code for code, _ in results]
    latency = p99([t for _, t in results])
    growth = peak - base
    print(f"\nsurvival: {len(results)} deliveries, codes {sorted(set(codes))}, p99 {latency * 1000:.0f} ms, "
          f"RSS {base:.0f} -> peak {peak:.0f} MB (+{growth:.0f}); closed by the listener: {attack.closed}; "
          f"answers seen: {attack.answers}")
    assert len(results) >= 50 and all(code == 200 for code in codes), codes
    assert latency <= P99_LIMIT_S
    assert growth <= MAX_GROWTH_MB
    assert attack.closed["endless"] >= 100 and attack.closed["big"] >= 3


async def test_at_the_file_descriptor_limit_real_deliveries_get_through(tmp_path, signer_jwks):
    """The red team's case: `ulimit -n 256` and 300 slow connections (6 of 60 got through before)."""
    signer, jwks = signer_jwks
    proc, host, port = start({}, tmp_path, jwks, nofile=256)  # header timeout: the default 10 s
    try:
        attack = Attack(host, port, signer)
        tasks = attack.tasks(endless=0, slow=300, big=0, unsigned=0)
        await asyncio.sleep(2.0)  # all 300 connect (and get evicted, and come back)
        results = await deliveries(host, port, signer, "fd", attack.stop, lanes=3, limit=60)
        attack.stop.set()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
    finally:
        stop(proc)
    codes = [code for code, _ in results]
    print(f"\nfd limit: {codes.count(200)} of {len(codes)} answered 200, p99 "
          f"{p99([t for _, t in results]) * 1000:.0f} ms; slow connections closed: {attack.closed['slow']}")
    assert codes.count(200) == len(codes) >= 60  # lanes in flight may add one or two
    assert p99([t for _, t in results]) <= P99_LIMIT_S
