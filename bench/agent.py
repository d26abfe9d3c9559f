"""Agent overhead: one turn with two tool calls against a scripted OpenAI-compatible server.

Three variants run in interleaved rounds (order rotated each round) over the same tools and
server: a bare `create_agent` (no middleware, no transcript), our `AgentRunner` without the
transcript, and our `AgentRunner` writing the transcript. Prints medians and:
  logging overhead  = (ours+log - ours) / ours           goal <= 5 %
  our overhead/call = (ours+log - bare) / 2 tool calls   goal <= 10 ms
and how many transcript rows and commits a turn makes (rows between two shown events share one).
Run: .venv/bin/python bench/agent.py [rounds]
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
sys.path.insert(0, str(ROOT / "tests" / "agent"))
sys.path.insert(0, str(ROOT))

from scripted_openai import ScriptedOpenAI, call, calls, text  # noqa: E402 - after the sys.path line above

EP = "fal-ai/flux/dev"
SCRIPT = [calls(call("search_models", {"query": "flux"})), calls(call("get_pricing", {"endpoint_ids": [EP]})),
          text("flux/dev costs $0.025 per image.")]


def make_tools():
    """Two fast tools with the contract's names, tags and response format."""
    from langchain_core.tools import StructuredTool

    async def search_models(query: str | None = None) -> tuple[str, dict]:
        return f"Found 1 model: {EP}", {"models": [{"endpoint_id": EP}]}

    async def get_pricing(endpoint_ids: list[str]) -> tuple[str, dict]:
        return f"{EP}: $0.025/image", {"prices": [{"endpoint_id": EP, "unit_price": 0.025}]}

    return [StructuredTool.from_function(coroutine=f, name=f.__name__, description=f.__name__,
                                         response_format="content_and_artifact", tags=["fal", "read"],
                                         metadata={"kind": "read"}) for f in (search_models, get_pricing)]


async def main(rounds: int) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage

    from agent.core.events import TurnEnd
    from agent.core.models import make_model
    from agent.core.runner import AgentRunner
    from agent.personas import load_personas
    from agent.settings import Settings
    from agent.transcript.store import TranscriptStore

    tmp = tempfile.mkdtemp(prefix="bench-agent-")
    os.environ["FAL_PERSONA_HOME"] = tmp
    with ScriptedOpenAI(SCRIPT) as srv:
        os.environ["OPENAI_BASE_URL"] = srv.url
        settings = Settings()
        persona = load_personas()["producer"]
        tools = make_tools()
        bare = create_agent(make_model(settings, persona), tools, system_prompt=persona.system_prompt)
        class CountingStore(TranscriptStore):
            """Counts rows and commits, to print how the logging cost splits."""

            rows = commits = 0

            def write(self, rows):
                CountingStore.rows += len(rows)
                CountingStore.commits += 1
                return super().write(rows)

        store = CountingStore(Path(tmp) / "bench.sqlite3")

        async def run_bare() -> None:
            out = await bare.ainvoke({"messages": [HumanMessage("price of flux dev?")]})
            assert "0.025" in out["messages"][-1].content

        def ours(transcript):
            async def run() -> None:
                # A fresh runner per turn, like a fresh `ask`: no history growth between rounds.
                runner = AgentRunner(settings, persona, tools, transcript=transcript, user="bench")
                last = None
                async for event in runner.run_turn("price of flux dev?", None):
                    last = event
                assert isinstance(last, TurnEnd) and "0.025" in last.answer, last
            return run

        variants = {"bare create_agent": run_bare, "ours, no log": ours(None), "ours + transcript": ours(store)}
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for name in names:  # warm-up: imports, connections, SQLite schema
            srv.reset(SCRIPT)
            await variants[name]()
        CountingStore.rows = CountingStore.commits = 0
        for r in range(rounds):
            order = names[r % 3:] + names[:r % 3]
            for name in order:
                srv.reset(SCRIPT)
                started = time.perf_counter()
                await variants[name]()
                times[name].append(time.perf_counter() - started)
        store.close()

    med = {name: statistics.median(v) * 1000 for name, v in times.items()}
    print(f"agent turn, 2 tool calls, 3 model calls, {rounds} interleaved rounds (median ms):")
    for name, ms in med.items():
        print(f"  {name:<20} {ms:8.2f} ms")
    log_pct = (med["ours + transcript"] - med["ours, no log"]) / med["ours, no log"] * 100
    per_call = (med["ours + transcript"] - med["bare create_agent"]) / 2
    per_call_nolog = (med["ours, no log"] - med["bare create_agent"]) / 2
    rows, commits = CountingStore.rows / rounds, CountingStore.commits / rounds
    per_row = (med["ours + transcript"] - med["ours, no log"]) / rows * 1000
    print(f"transcript: {rows:.1f} rows in {commits:.1f} commits per turn, {per_row:.0f} us per row")
    print(f"logging overhead: {log_pct:+.1f} %  (goal <= 5 %)")
    print(f"our overhead per tool call: {per_call:+.2f} ms with transcript, {per_call_nolog:+.2f} ms without "
          "(goal <= 10 ms)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 40))
