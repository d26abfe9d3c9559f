"""The app on a real `Runtime` (real AgentRunner, offline planner, ToolGate, TranscriptStore)
over the fake fal tools of tests/agent: the TUI's side of the seam without a sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.tools import StructuredTool

from tests.agent.agent_fakes import FakeFal, SearchArgs, build_fake_tools


def models_search_tool(fal: FakeFal, count: int) -> StructuredTool:
    """search_models answering with the real table (tools.render) of `count` models, up to
    the limit asked, and a next page when there are more."""
    from tools import render
    from tools.fal.models import ModelsPage

    async def search_models(**kw: Any) -> tuple[str, Any]:
        fal.calls.append(("search_models", kw))
        limit = kw.get("limit") or 10
        models = [{"endpoint_id": f"fal-ai/model-{i:02d}",
                   "metadata": {"display_name": f"Model {i} [v{i}]", "category": "text-to-image",
                                "status": "active"}} for i in range(count)]
        page = ModelsPage.model_validate({"models": models[:limit], "has_more": count > limit,
                                          "next_cursor": "c2" if count > limit else None})
        return render.models_table(page), page.model_dump(mode="json")

    return StructuredTool.from_function(
        coroutine=search_models, name="search_models", description="fake search_models",
        args_schema=SearchArgs, response_format="content_and_artifact", tags=["fal", "read"],
        metadata={"kind": "read"})


class RealFactory:
    """Builds one real Runtime over fake tools (an own transcript file); remembers it."""

    def __init__(self, tmp_path: Path, models: int = 2) -> None:
        self.fal = FakeFal()
        self.tmp_path, self.models = tmp_path, models
        self.built: list[Any] = []

    def __call__(self, settings: Any, persona: str | None) -> Any:
        from agent.core.runner import AgentRunner
        from agent.core.runtime import Runtime
        from agent.personas import load_personas
        from agent.settings import Settings
        from agent.transcript.store import TranscriptStore

        real = Settings()
        tools = [models_search_tool(self.fal, self.models) if t.name == "search_models" else t
                 for t in build_fake_tools(self.fal)]
        personas = load_personas()
        store = TranscriptStore(self.tmp_path / "transcript.sqlite3")
        runner = AgentRunner(real, personas[persona or "producer"], tools, transcript=store, user="t")
        runtime = Runtime(settings=real, mode="sandbox", personas=personas, runner=runner, tools=tools,
                          client=None, transcript=store, user="t")
        self.built.append(runtime)
        return runtime
