"""`fal-persona mcp` per-call overhead: search_models through MCP vs. the tool called directly.

One sandbox runs in this process; both paths call its catalogue with the same arguments:
  direct = `tool.ainvoke(args)` on the LangChain tool (in this process, no guard, no transcript)
  mcp    = the official `mcp` client's `call_tool("search_models", args)` over stdio to a spawned
           `fal-persona mcp` (its guard, its transcript row per call, JSON-RPC both ways), pointed
           at the same sandbox
Each round times N calls of each, alternating one by one (after a warm-up), and takes
  ratio = median(mcp latency) / median(direct latency)
and the figure is the median of the rounds' ratios. Goal: ratio <= 1.5.
Also timed in the same rounds: an MCP ping (`send_ping`, the SDK's JSON-RPC round trip with
no tool behind it), to show the floor: (direct + ping) / direct is what a server doing no
work at all would score. The machine's load average is printed with the figures.
Run: .venv/bin/python bench/mcp.py [calls per round, default 60] [rounds, default 3]
(BENCH_MCP_ARGS="--no-log" passes extra flags to the server, e.g. to see the transcript's share.)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["LANGSMITH_TRACING"] = "false"
ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path and its name would hide the SDK.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

ARGS = {"query": "flux", "limit": 10}
GOAL = 1.5


async def _paired(direct, via_mcp, ping, n: int, *, flip: bool) -> tuple[list[float], list[float], list[float]]:
    """N calls of each, alternating one by one (so all see the same machine load)."""
    d: list[float] = []
    m: list[float] = []
    p: list[float] = []
    for i in range(n):
        order = [(direct, d), (via_mcp, m), (ping, p)]
        for call, out in (order if (i % 2 == 0) != flip else order[::-1]):
            started = time.perf_counter()
            await call()
            out.append(time.perf_counter() - started)
    return d, m, p


async def _timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        out.append(time.perf_counter() - started)
    return out


async def main(n: int, rounds: int) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    from agent.settings import SANDBOX_KEY
    from sandbox.server import start_in_thread
    from tools.catalog import build_fal_tools
    from tools.fal.config import FalConfig

    sandbox = start_in_thread()
    root = sandbox.url.rstrip("/")
    urls = {"FAL_QUEUE_BASE_URL": root, "FAL_API_BASE_URL": f"{root}/v1",
            "FAL_JWKS_URL": f"{root}/.well-known/jwks.json"}
    home = tempfile.mkdtemp(prefix="bench-mcp-")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update({"FAL_KEY": SANDBOX_KEY, "FAL_PERSONA_HOME": home, **urls})
    config = FalConfig(FAL_KEY=SANDBOX_KEY, **urls)
    tool = next(t for t in build_fal_tools(config=config) if t.name == "search_models")
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent.cli", "mcp", "--persona", "analyst", *os.environ.get("BENCH_MCP_ARGS", "").split()],
                                   env=env, cwd=str(ROOT))
    try:
        with open(os.devnull, "w") as errlog:
            async with asyncio.timeout(600), stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()

                    async def via_mcp() -> None:
                        result = await session.call_tool("search_models", ARGS)
                        assert not result.isError, result.content

                    async def direct() -> None:
                        await tool.ainvoke(ARGS)

                    await _timed(via_mcp, 10)  # warm-up: imports, connections, the first transcript write
                    await _timed(direct, 10)
                    async def ping() -> None:
                        await session.send_ping()

                    ratios, floors = [], []
                    for r in range(rounds):
                        d, m, p = await _paired(direct, via_mcp, ping, n, flip=r % 2 == 1)
                        md, mm, mp = statistics.median(d), statistics.median(m), statistics.median(p)
                        ratios.append(mm / md)
                        floors.append((md + mp) / md)
                        print(f"round {r + 1}: direct {md * 1e3:.2f} ms, mcp {mm * 1e3:.2f} ms "
                              f"(+{(mm - md) * 1e3:.2f} ms), ratio {mm / md:.2f}; ping {mp * 1e3:.2f} ms")
    finally:
        sandbox.stop()
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= GOAL else "NOT met"
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(f"search_models, {n} calls x {rounds} rounds on the sandbox: mcp/direct median latency ratio "
          f"{ratio:.2f} (goal <= {GOAL}): {verdict}; the SDK's round trip alone (ping) makes "
          f"{statistics.median(floors):.2f}; load average {load}")


if __name__ == "__main__":
    calls_per_round = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    rounds_ = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(main(calls_per_round, rounds_))
