"""Input schemas from the OpenAPI document: fields, defaults, media fields, argument checks,
the per-endpoint cache, and the 'no schema' outcome."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fal_fakes import API, KEY

from tools.fal import (
    ArgumentsInvalid,
    FalClient,
    FalConfig,
    FalError,
    InputError,
    InputSchema,
    SchemaUnavailable,
    compact_fields,
    input_schema_from_openapi,
)
from tools.fal.inputschema import SchemaCache

EP = "fal-ai/flux/dev"
SIZES = ["square_hd", "square", "landscape_4_3"]
DOC: dict[str, Any] = {
    "openapi": "3.0.4",
    "paths": {
        "/fal-ai/flux/dev/requests/{request_id}": {"get": {}},
        "/fal-ai/flux/dev": {"post": {"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/FluxDevInput"}}}}}},
    },
    "components": {"schemas": {
        "FluxDevInput": {"type": "object", "required": ["prompt"], "properties": {
            "prompt": {"type": "string", "minLength": 1, "description": "What to draw."},
            "image_size": {"anyOf": [{"$ref": "#/components/schemas/ImageSize"},
                                     {"type": "string", "enum": SIZES}],
                           "default": "landscape_4_3"},
            "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
            "guidance_scale": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "seed": {"type": "integer", "nullable": True},
            "image_url": {"type": "string"},
            "mask": {"type": "string", "format": "uri"},
            "reference_image_urls": {"type": "array", "items": {"type": "string"}},
            "loras": {"type": "array", "items": {"$ref": "#/components/schemas/Lora"},
                      "default": []},
            "enable_safety_checker": {"type": "boolean", "default": True},
        }},
        "ImageSize": {"type": "object", "properties": {"width": {"type": "integer"},
                                                       "height": {"type": "integer"}}},
        "Lora": {"type": "object", "required": ["path"],
                 "properties": {"path": {"type": "string"},
                                "scale": {"type": "number", "maximum": 4}}},
        "FluxDevOutput": {"type": "object"},
    }},
}


@pytest.fixture
def schema() -> InputSchema:
    out = input_schema_from_openapi(EP, DOC)
    assert isinstance(out, InputSchema)
    return out


def test_the_input_is_found_through_the_post_request_body_ref(schema):
    assert schema.available and schema.name == "FluxDevInput" and schema.endpoint_id == EP
    assert [f.name for f in schema.fields][:3] == ["prompt", "image_size", "num_images"]
    assert schema.required == ("prompt",)
    assert schema.defaults == {"image_size": "landscape_4_3", "num_images": 1, "loras": [],
                               "enable_safety_checker": True}
    assert schema.media_fields == ("image_url", "mask", "reference_image_urls")
    size = schema.field("image_size")
    assert size is not None and size.enum == tuple(SIZES)
    assert size.type == "ImageSize object or string"
    assert schema.field("seed").type == "integer or null"
    assert schema.field("loras").type == "array of Lora object"
    assert schema.field("prompt").description == "What to draw."


def test_local_paths_in_media_fields_are_found(schema):
    args = {"prompt": "https://not-media.example", "image_url": "~/Pictures/fox.png",
            "mask": "https://cdn.example/mask.png",
            "reference_image_urls": ["data:image/png;base64,AAA", "./ref.jpg", 3]}
    assert schema.local_files(args) == [("image_url", None, "~/Pictures/fox.png"),
                                        ("reference_image_urls", 1, "./ref.jpg")]
    assert schema.local_files({"prompt": "x"}) == []


def test_compact_form_is_short(schema):
    rows = {r["name"]: r for r in schema.compact()}
    assert rows["prompt"] == {"name": "prompt", "type": "string", "required": True}
    assert rows["image_size"]["enum"] == SIZES and rows["image_size"]["default"] == "landscape_4_3"
    assert rows["image_url"]["media"] is True and "default" not in rows["image_url"]
    assert compact_fields(EP, DOC) == schema.compact()
    assert compact_fields(EP, {"openapi": "3.0.4", "paths": {}}) is None


def test_good_arguments_pass(schema):
    schema.validate({"prompt": "a fox", "image_size": {"width": 512}, "seed": None,
                     "num_images": 4, "guidance_scale": 0.5})
    schema.validate({"prompt": "a fox", "image_size": "square"})
    assert schema.problems({"prompt": "x", "loras": [{"path": "a", "scale": 1.5}]}) == []


def test_every_problem_is_named_with_type_and_allowed_values(schema):
    with pytest.raises(ArgumentsInvalid) as info:
        schema.validate({"promt": "a fox", "image_size": "huge", "num_images": "2",
                         "seed": "x", "loras": [{"scale": 9}]})
    err = info.value
    assert isinstance(err, InputError) and isinstance(err, FalError)
    assert err.problems == err.detail and len(err.problems) == 8
    text = err.message
    assert text.startswith(f"arguments for {EP} do not fit its input schema (8 problems)")
    assert "unknown field 'promt' (did you mean 'prompt'?)" in text
    assert "the fields it takes: prompt, image_size, num_images" in text
    assert "missing required field 'prompt' (string)" in text
    assert ("field 'image_size' (ImageSize object or string; allowed values: \"square_hd\", "
            "\"square\", \"landscape_4_3\"): \"huge\" is not an allowed value") in text
    assert "field 'num_images' (integer): got string \"2\"" in text
    assert "field 'seed' (integer or null): got string \"x\"" in text
    assert "field 'loras[0]' (object): missing required 'path'" in text
    assert "field 'loras[0].scale' (number): 9 is greater than the maximum of 4" in text
    assert err.to_dict()["detail"] == err.problems


def test_openapi_dialect_is_understood(schema):
    # exclusiveMinimum: true with minimum 0 means > 0 (OpenAPI 3.0), not a boolean keyword.
    assert schema.problems({"prompt": "x", "guidance_scale": 0}) == [
        "field 'guidance_scale' (number): 0 is less than or equal to the minimum of 0"]
    assert schema.problems({"prompt": "x", "guidance_scale": 0.1}) == []
    assert schema.problems({"prompt": "x", "num_images": 0})[0].startswith(
        "field 'num_images' (integer): 0 is less than the minimum of 1")
    assert schema.problems("a fox") == [
        "arguments must be a JSON object of field names to values, got string"]


def test_all_of_members_and_inline_schemas():
    doc = {"openapi": "3.0.4", "paths": {"/x/y": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"allOf": [
            {"$ref": "#/components/schemas/Base"},
            {"type": "object", "properties": {"extra": {"type": "integer"}}}]}}}}}}},
        "components": {"schemas": {"Base": {"type": "object", "required": ["text"],
                                            "properties": {"text": {"type": "string"}}}}}}
    out = input_schema_from_openapi("x/y", doc)
    assert isinstance(out, InputSchema) and out.name is None
    assert [f.name for f in out.fields] == ["text", "extra"] and out.required == ("text",)
    assert out.problems({"text": "hi", "extra": "no"}) == [
        "field 'extra' (integer): got string \"no\""]


def test_sandbox_shaped_document():
    props = {"prompt": {"type": "string", "minLength": 1, "title": "Prompt"},
             "duration": {"type": "string", "enum": ["5", "10"], "default": "5"}}
    doc = {"openapi": "3.0.4", "paths": {"/fal-ai/kling/i2v": {"post": {"requestBody": {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Input"}}}}}}},
        "components": {"schemas": {"Input": {"type": "object", "properties": props,
                                             "required": ["prompt"]}}}}
    out = input_schema_from_openapi("fal-ai/kling/i2v", doc)
    assert isinstance(out, InputSchema) and out.defaults == {"duration": "5"}
    assert out.problems({"prompt": "go", "duration": 5}) == [
        'field \'duration\' (string; allowed values: "5", "10"): got integer 5']
    assert out.problems({"prompt": "go", "duration": "7"}) == [
        'field \'duration\' (string; allowed values: "5", "10"): "7" is not an allowed value']


@pytest.mark.parametrize("doc, reason", [
    (None, "missing"),
    ({"error": {"code": "expansion_failed", "message": "boom"}}, "could not expand"),
    ({"openapi": "3.0.4", "paths": {}}, "no paths"),
    ({"openapi": "3.0.4", "paths": {"/a/b": {"get": {}}}}, "no POST"),
    ({"openapi": "3.0.4", "paths": {"/a/b": {"post": {}}}}, "no request body"),
    ({"openapi": "3.0.4", "paths": {"/a/b": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Gone"}}}}}}}},
     "not in components"),
])
def test_documents_without_a_schema_are_unavailable(doc, reason):
    out = input_schema_from_openapi("a/b", doc)
    assert isinstance(out, SchemaUnavailable) and not out.available
    assert reason in out.reason and out.endpoint_id == "a/b"


# -- fetching and caching -------------------------------------------------------------------

class Platform:
    """GET /v1/models answering with DOC for EP; everything else 404; can be made to fail."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.fail: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.fail == 0:
            raise httpx.ConnectError("refused", request=request)
        if self.fail:
            return httpx.Response(self.fail, json={"error": {"type": "server_error",
                                                             "message": "down"}})
        ids = request.url.params.get_list("endpoint_id")
        if request.url.path != "/v1/models" or ids != [EP] and ids != ["fal-ai/other"]:
            return httpx.Response(404, json={"error": {"type": "not_found",
                                                       "message": "Resource not found"}})
        assert request.url.params.get_list("expand") == ["openapi-3.0"]
        models = [{"endpoint_id": EP, "openapi": copy.deepcopy(DOC)}] if ids == [EP] else []
        return httpx.Response(200, json={"models": models, "has_more": False})


class Tick:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def client(platform: Platform, **extra: Any) -> FalClient:
    return FalClient(FalConfig(FAL_KEY=KEY, FAL_API_BASE_URL=API, FAL_MAX_RETRIES=0,
                               FAL_DEADLINE_S=5, **extra),
                     transport=httpx.MockTransport(platform))


async def test_schema_is_fetched_once_per_ttl():
    platform, tick = Platform(), Tick()
    async with client(platform) as fal:
        cache = SchemaCache(fal, ttl_s=60, clock=tick)
        first = await cache.get(EP)
        assert isinstance(first, InputSchema) and (await cache.get(" " + EP)) is first
        tick.now += 59
        assert await cache.get(EP) is first and cache.fetches == 1
        tick.now += 2
        again = await cache.get(EP)
        assert again is not first and cache.fetches == 2
        cache.forget(EP)
        await cache.get(EP)
        assert cache.fetches == 3 and len(platform.calls) == 3


async def test_no_schema_is_an_outcome_not_an_error():
    platform, tick = Platform(), Tick()
    async with client(platform) as fal:
        cache = SchemaCache(fal, ttl_s=600, clock=tick)
        missing = await cache.get("fal-ai/nope")
        assert isinstance(missing, SchemaUnavailable) and missing.status == 404
        assert "does not know" in missing.reason
        listed_none = await cache.get("fal-ai/other")
        assert isinstance(listed_none, SchemaUnavailable) and "lists no endpoint" in listed_none.reason
        platform.fail = 0
        down = await cache.get(EP)
        assert isinstance(down, SchemaUnavailable) and "TransportError" in down.reason
        assert KEY not in down.reason
        platform.fail = None
        tick.now += 29  # a 'no schema' answer is reused for at most 30 s
        assert await cache.get(EP) is down
        tick.now += 2
        assert isinstance(await cache.get(EP), InputSchema)
        with pytest.raises(InputError):
            await cache.get("not an id")


async def test_check_arguments_through_the_client():
    platform = Platform()
    async with client(platform, FAL_SCHEMA_TTL_S=600) as fal:
        ok = await fal.check_arguments(EP, {"prompt": "a fox"})
        assert isinstance(ok, InputSchema) and ok.defaults["num_images"] == 1
        with pytest.raises(ArgumentsInvalid, match="unknown field 'promt'"):
            await fal.check_arguments(EP, {"promt": "a fox"})
        assert len(platform.calls) == 1  # cached for FAL_SCHEMA_TTL_S
        gone = await fal.check_arguments("fal-ai/nope", {"anything": 1})
        assert isinstance(gone, SchemaUnavailable)
        assert isinstance(await fal.input_schema(EP), InputSchema)
