"""The planner's search: how many rows to ask for, and an answer that lists them all."""

from __future__ import annotations

import pytest
from langchain_core.messages import ToolMessage

from agent.planner import parse
from agent.planner.model import OfflinePlanner


@pytest.mark.parametrize("text, args", [
    ("search flux limit 12", {"query": "flux", "limit": 12}),
    ("search flux in text-to-image limit=5", {"query": "flux", "category": "text-to-image", "limit": 5}),
    ("list the top 12 text-to-image models", {"category": "text-to-image", "limit": 12}),
    ("find first 30 video models", {"query": "video", "limit": 30}),
    ("search flux limit 500", {"query": "flux", "limit": 100}),  # the tool's maximum
    ("search flux", {"query": "flux"}),
])
def test_search_limit(text, args):
    (step,) = parse(text)
    assert step.tool == "search_models" and step.args == args


def _done(count: int, has_more: bool, limit: int | None = None):
    rows = "\n".join(f"fal-ai/model-{i} | Model {i} | text-to-image | active" for i in range(count))
    tail = "More: call search_models again with cursor='c2'." if has_more else "No more pages."
    table = f"endpoint_id | name | category | status\n{rows}\n({count} models) {tail}"
    artifact = {"models": [{"endpoint_id": f"fal-ai/model-{i}"} for i in range(count)], "has_more": has_more}
    args = {"query": "model", **({"limit": limit} if limit else {})}
    call = {"name": "search_models", "args": args, "id": "c1"}
    return [(call, ToolMessage(content=table, artifact=artifact, tool_call_id="c1", name="search_models"))]


def test_search_answer_says_how_to_see_more_when_there_are_more():
    full = OfflinePlanner._summary([], _done(12, has_more=False))
    assert all(f"fal-ai/model-{i} |" in full for i in range(12)) and "(12 models)" in full
    assert "more match" not in full
    page = OfflinePlanner._summary([], _done(20, has_more=True))
    assert all(f"fal-ai/model-{i} |" in page for i in range(20))
    assert "Showing 20 models; more match: add `limit 50`" in page
    most = OfflinePlanner._summary([], _done(100, has_more=True, limit=100))
    assert all(f"fal-ai/model-{i} |" in most for i in range(100)) and "(100 models)" in most
    assert "the most one search returns" in most


def test_models_table_keeps_a_full_page():
    from tools import render
    from tools.fal.models import ModelsPage

    models = [{"endpoint_id": f"fal-ai/some-long-model-name-{i:03d}",
               "metadata": {"display_name": f"Some Long Model Display Name {i}", "category": "text-to-image",
                            "status": "active"}} for i in range(100)]
    table = render.models_table(ModelsPage.model_validate({"models": models, "has_more": True, "next_cursor": "x"}))
    assert "truncated" not in table and all(m["endpoint_id"] in table for m in models)
    assert "(100 models)" in table
