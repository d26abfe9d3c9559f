"""The guard's side of a submit's inputs with a fake fal client: no schema (the approval says the
arguments go unchecked, media fields found by name), an approver's edit checked again, an upload
that fails after approval, and the lines an approval shows. No sandbox: `FakeInputs` stands in
for `FalClient.check_arguments` / `FalClient.upload`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_fakes import FakeFal, build_fake_tools
from langchain_core.tools import StructuredTool

from agent.core.events import ApprovalRequest, Decision, ToolEnd
from agent.core.media_inputs import NO_SCHEMA, SubmitInputs, approval_lines
from agent.core.runner import AgentRunner
from agent.settings import Settings
from tools.fal.config import FalConfig
from tools.fal.errors import ServerError
from tools.fal.inputschema import SchemaUnavailable, input_schema_from_openapi
from tools.fal.upload import UploadedFile

EP = "fal-ai/flux/dev"
DOC = {"openapi": "3.0.4", "paths": {f"/{EP}": {"post": {"requestBody": {"content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/EditInput"}}}}}}},
    "components": {"schemas": {"EditInput": {"type": "object", "required": ["prompt", "image_url"], "properties": {
        "prompt": {"type": "string"}, "image_url": {"type": "string", "format": "uri"},
        "strength": {"type": "number", "default": 0.95}}}}}}


class FakeInputs:
    """Answers schema checks from DOC (or says there is none) and 'uploads' to a fake CDN."""

    def __init__(self, *, schema: bool = True, fail_upload: bool = False) -> None:
        self.config = FalConfig(FAL_KEY="id:secret")
        self.schema, self.fail_upload = schema, fail_upload
        self.checked: list[dict[str, Any]] = []
        self.uploaded: list[Path] = []

    async def check_arguments(self, endpoint_id: str, arguments: dict[str, Any]):
        self.checked.append(arguments)
        if not self.schema:
            return SchemaUnavailable(endpoint_id, "fal.ai sent no OpenAPI document for it")
        found = input_schema_from_openapi(endpoint_id, DOC)
        found.validate(arguments)
        return found

    async def upload(self, source, *, file_name=None, content_type=None, lifecycle=None) -> UploadedFile:
        if self.fail_upload:
            raise ServerError("upload: the CDN answered 503", status=503)
        path = Path(source)
        self.uploaded.append(path)
        return UploadedFile(url=f"https://cdn.test/files/{path.name}", file_name=path.name,
                            size=path.stat().st_size, content_type="image/png", multipart=False, parts=1)


def fake_upload_tool() -> StructuredTool:
    async def upload_file(path: str) -> tuple[str, Any]:
        return "uploaded", {"url": "https://cdn.test/x"}
    return StructuredTool.from_function(coroutine=upload_file, name="upload_file", description="fake",
                                        response_format="content_and_artifact")


class Decide:
    def __init__(self, decision: Decision) -> None:
        self.decision, self.requests = decision, []

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.requests.append(request)
        return self.decision


def runner(personas, fal: FakeFal, inputs: FakeInputs) -> AgentRunner:
    tools = [*build_fake_tools(fal), fake_upload_tool()]
    return AgentRunner(Settings(), personas["producer"], tools, user="t", fal=inputs)


async def submit(run: AgentRunner, args: dict[str, Any], approver: Decide) -> ToolEnd:
    events = [e async for e in run.run_tool("submit_queue_request", args, approver)]
    return next(e for e in events if isinstance(e, ToolEnd))


async def test_without_a_schema_the_approval_says_so_and_url_fields_still_upload(personas, tmp_path):
    photo = tmp_path / "a.png"
    photo.write_bytes(b"\x89PNG" + bytes(100))
    fal, inputs = FakeFal(), FakeInputs(schema=False)
    approver = Decide(Decision(action="approve"))
    end = await submit(runner(personas, fal, inputs), {"endpoint_id": EP, "arguments": {
        "prompt": "x", "image_url": f"@{photo}", "mask_url": "https://example.test/m.png"}}, approver)
    [request] = approver.requests
    assert request.schema_note == f"{NO_SCHEMA} (fal.ai sent no OpenAPI document for it)"
    assert request.uploads == [("image_url", str(photo), 104)] and request.defaults == {}
    assert not end.error and inputs.uploaded == [photo]
    assert fal.submitted()[0]["arguments"]["image_url"] == "https://cdn.test/files/a.png"
    assert fal.submitted()[0]["arguments"]["mask_url"] == "https://example.test/m.png"  # a URL stays
    assert approval_lines(request)[-1].startswith(NO_SCHEMA)


async def test_an_approvers_edit_is_checked_again_and_refused_when_it_breaks_the_schema(personas, tmp_path):
    photo = tmp_path / "a.png"
    photo.write_bytes(bytes(10))
    fal, inputs = FakeFal(), FakeInputs()
    edited = {"endpoint_id": EP, "arguments": {"image_url": str(photo), "promt": "y"}}
    approver = Decide(Decision(action="edit", args=edited))
    end = await submit(runner(personas, fal, inputs),
                       {"endpoint_id": EP, "arguments": {"image_url": str(photo), "prompt": "y"}}, approver)
    assert len(approver.requests) == 1 and approver.requests[0].defaults == {"strength": 0.95}
    assert end.error and "unknown field 'promt'" in end.content and end.artifact["error"]["outcome"] == "refused"
    assert fal.submitted() == [] and inputs.uploaded == []


async def test_a_failed_upload_after_approval_submits_nothing(personas, tmp_path):
    photo = tmp_path / "a.png"
    photo.write_bytes(bytes(10))
    fal, inputs = FakeFal(), FakeInputs(fail_upload=True)
    approver = Decide(Decision(action="approve"))
    end = await submit(runner(personas, fal, inputs),
                       {"endpoint_id": EP, "arguments": {"image_url": str(photo), "prompt": "y"}}, approver)
    assert len(approver.requests) == 1
    assert end.error and end.artifact["error"]["outcome"] == "failed"
    assert end.artifact["error"]["type"] == "UploadFailed" and "image_url" in end.content
    assert fal.submitted() == []


async def test_a_list_field_uploads_each_local_item_in_place(tmp_path):
    one, two = tmp_path / "1.png", tmp_path / "2.png"
    one.write_bytes(bytes(5))
    two.write_bytes(bytes(7))
    inputs = SubmitInputs(FakeInputs(schema=False), may_upload=True)
    args = {"endpoint_id": EP, "arguments": {"image_urls": [str(one), "https://x.test/a.png", f"@{two}"]}}
    plan = await inputs.plan(args)
    assert [(u.label, u.file.size) for u in plan.uploads] == [("image_urls[0]", 5), ("image_urls[2]", 7)]
    sent, records = await inputs.upload(args, plan)
    assert sent["arguments"]["image_urls"] == ["https://cdn.test/files/1.png", "https://x.test/a.png",
                                               "https://cdn.test/files/2.png"]
    assert [r["size"] for r in records] == [5, 7] and args["arguments"]["image_urls"][0] == str(one)


@pytest.mark.parametrize("value", ["https://x.test/a.png", "data:image/png;base64,AAAA"])
async def test_urls_are_never_taken_for_local_files(value):
    plan = await SubmitInputs(FakeInputs(), may_upload=True).plan(
        {"endpoint_id": EP, "arguments": {"image_url": value, "prompt": "x"}})
    assert plan.uploads == ()


@pytest.mark.parametrize(("text", "endpoint", "arguments"), [
    ('edit ./photo.png with fal-ai/flux/dev/image-to-image prompt "watercolor"', "fal-ai/flux/dev/image-to-image",
     {"image_url": "./photo.png", "prompt": "watercolor"}),
    ('edit "my photo.png" make it ink strength=0.5', "fal-ai/flux/dev/image-to-image",
     {"image_url": "my photo.png", "prompt": "make it ink", "strength": 0.5}),
    ("upscale @a.png", "fal-ai/esrgan", {"image_url": "a.png"}),
    ("upscale ./a.png with fal-ai/clarity-upscaler scale=4", "fal-ai/clarity-upscaler",
     {"image_url": "./a.png", "scale": 4}),
    ("animate ./a.png", "fal-ai/ltx-video/image-to-video", {"image_url": "./a.png", "prompt": "animate this image"}),
    ('submit fal-ai/flux/dev/image-to-image image_url=./a.png prompt "ink"', "fal-ai/flux/dev/image-to-image",
     {"image_url": "./a.png", "prompt": "ink"}),
])
def test_planner_media_steps(text, endpoint, arguments):
    from agent.planner.grammar import parse

    [step] = parse(text)
    assert step.tool == "submit_queue_request"
    assert step.args == {"endpoint_id": endpoint, "arguments": arguments}


@pytest.mark.parametrize(("text", "why"), [("edit", "edit which file?"), ("edit ./a.png", "how should it change?"),
                                           ("upscale", "upscale which file?")])
def test_planner_media_steps_say_what_is_missing(text, why):
    from agent.planner.grammar import HELP_TEXT, GrammarError, parse

    with pytest.raises(GrammarError, match=why):
        parse(text)
    assert "edit <path>" in HELP_TEXT and "upscale <path>" in HELP_TEXT and "animate <path>" in HELP_TEXT
