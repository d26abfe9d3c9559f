"""The upload_file tool: langchain-tests suites, kind and schema, content without the bytes,
typed errors as content; and search_models' short input-field listing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from cdn_fakes import CDN, FakeCdn
from fal_fakes import FakeFal
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from test_fal_inputschema import DOC, EP

from tools import build_fal_tools
from tools.catalog import OPTIONAL_TOOLS, TOOL_KINDS, build_fal_tool
from tools.fal import FalClient, FalConfig

PAYLOAD = b"\x89PNG fake image bytes \x00\x01\x02 " * 40
_EXAMPLE_DIR = Path(tempfile.gettempdir()) / "fal-persona-upload-tool-tests"


def example_file() -> Path:
    """A small PNG-named file the standard suites upload (rewritten each time it is asked)."""
    _EXAMPLE_DIR.mkdir(exist_ok=True)
    path = _EXAMPLE_DIR / "fox.png"
    path.write_bytes(PAYLOAD)
    return path


def client_for(cdn: FakeCdn, fake: FakeFal | None = None) -> FalClient:
    fake = fake or FakeFal()
    config = fake.config(**cdn.config())
    return FalClient(config, transport=cdn.router(fake.handle))


class _UploadBase:
    @property
    def tool_constructor(self) -> BaseTool:
        return build_fal_tool("upload_file", client=client_for(FakeCdn()))

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": str(example_file()), "lifecycle": "1d"}


class TestUploadUnit(_UploadBase, ToolsUnitTests):
    pass


class TestUploadIntegration(_UploadBase, ToolsIntegrationTests):
    pass


def _call(tool: BaseTool, args: dict[str, Any]) -> Any:
    return tool.invoke({"name": tool.name, "args": args, "id": "c1", "type": "tool_call"})


async def _acall(tool: BaseTool, args: dict[str, Any]) -> Any:
    return await tool.ainvoke({"name": tool.name, "args": args, "id": "c1", "type": "tool_call"})


def test_upload_is_optional_with_its_own_kind():
    from tools.catalog import _HANDLERS
    from tools.registry import REGISTRY

    assert set(_HANDLERS) == set(REGISTRY)  # every registered tool is built with a handler
    assert OPTIONAL_TOOLS == ("upload_file",) and TOOL_KINDS["upload_file"] == "upload"
    assert "upload_file" not in {t.name for t in build_fal_tools()}
    tools = {t.name: t for t in build_fal_tools(include_upload=True)}
    tool = tools["upload_file"]
    assert tool.tags == ["fal", "upload"] and tool.metadata == {"kind": "upload"}
    assert tool.response_format == "content_and_artifact"
    props = tool.args_schema.model_json_schema()["properties"]
    assert set(props) == {"path", "lifecycle", "content_type"}
    assert all(len(p.get("description", "")) > 20 for p in props.values())
    assert "1y" in json.dumps(props["lifecycle"])


async def test_upload_answers_url_size_type_never_bytes(tmp_path):
    cdn = FakeCdn()
    path = tmp_path / "fox.png"
    path.write_bytes(PAYLOAD)
    tool = build_fal_tool("upload_file", client=client_for(cdn))
    msg = await _acall(tool, {"path": str(path), "lifecycle": 3600})
    art = msg.artifact
    assert art["url"].startswith(CDN) and art["url"] in msg.content
    assert (art["size"], art["content_type"], art["expires_in_s"]) == (len(PAYLOAD),
                                                                       "image/png", 3600)
    assert "image/png" in msg.content and "1.0 KiB" in msg.content
    dumped = msg.content + json.dumps(art)
    assert "PNG fake" not in dumped and "\\u0000" not in dumped
    assert cdn.files[art["url"]][0] == PAYLOAD


def test_upload_sync_and_typed_errors_as_content(tmp_path):
    cdn = FakeCdn()
    tool = build_fal_tool("upload_file", client=client_for(cdn))
    msg = _call(tool, {"path": str(tmp_path / "missing.png")})
    assert msg.content.startswith("Error: upload_file: FileMissingError")
    assert "Next:" in msg.content and msg.artifact["error"]["type"] == "FileMissingError"
    msg = _call(tool, {"path": str(tmp_path)})
    assert msg.artifact["error"]["type"] == "NotAFileError"
    msg = _call(tool, {"path": str(example_file()), "lifecycle": "2h"})
    assert msg.content.startswith("Error: invalid arguments") and "error" in msg.artifact
    msg = _call(tool, {"path": str(example_file()), "content_type": "not a type"})
    assert msg.artifact["error"]["type"] == "InputError"
    assert cdn.seen == []
    ok = _call(tool, {"path": str(example_file()), "content_type": "image/webp"})
    assert ok.artifact["content_type"] == "image/webp"


async def test_upload_refused_by_fal_is_readable(tmp_path):
    cdn = FakeCdn(fail_token=[403])
    tool = build_fal_tool("upload_file", client=client_for(cdn))
    msg = await _acall(tool, {"path": str(example_file())})
    assert msg.content.startswith("Error: upload_file: ForbiddenError (HTTP 403)")
    assert "upload token" in msg.content and FakeFal().config().key.get_secret_value() \
        not in msg.content


async def test_search_models_input_fields_short_form():
    def platform(request: httpx.Request) -> httpx.Response:
        assert request.url.params.get_list("expand") == ["openapi-3.0"]
        return httpx.Response(200, json={"models": [
            {"endpoint_id": EP, "openapi": DOC},
            {"endpoint_id": "fal-ai/bare", "openapi": {"openapi": "3.0.4", "paths": {}}}],
            "has_more": False})

    fal = FalClient(FalConfig(FAL_KEY="k:secret1", FAL_API_BASE_URL="http://api.test/v1"),
                    transport=httpx.MockTransport(platform))
    tool = build_fal_tool("search_models", client=fal)
    msg = await _acall(tool, {"endpoint_ids": [EP, "fal-ai/bare"], "input_fields": True})
    first, bare = msg.artifact["models"]
    assert "openapi" not in first and bare["input_fields"] is None
    rows = {r["name"]: r for r in first["input_fields"]}
    assert rows["prompt"] == {"name": "prompt", "type": "string", "required": True}
    assert rows["image_size"]["enum"] == ["square_hd", "square", "landscape_4_3"]
    assert f"{EP} input: prompt (string, required);" in msg.content
    assert "image_url (string, media URL)" in msg.content
    assert "num_images (integer, default 1)" in msg.content
    assert "fal-ai/bare input: no schema available" in msg.content
    both = await _acall(tool, {"endpoint_ids": [EP], "input_fields": True,
                               "expand_openapi": True})
    assert both.artifact["models"][0]["openapi"]["openapi"] == "3.0.4"


@pytest.mark.parametrize("flag", [False])
async def test_search_models_without_the_flag_is_unchanged(flag):
    fake = FakeFal()
    tool = build_fal_tool("search_models", client=FalClient(fake.config(),
                                                            transport=fake.transport()))
    msg = await _acall(tool, {"query": "flux", "input_fields": flag})
    assert " input: " not in msg.content
    assert all("input_fields" not in m for m in msg.artifact["models"])
    assert not any("expand" in str(r.url) for r in fake.seen)
