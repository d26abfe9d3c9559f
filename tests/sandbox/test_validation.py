"""Submits are checked against the OpenAPI each endpoint publishes (`expand=openapi-3.0`)."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
import zipfile

import httpx
import jsonschema
import pytest
from PIL import Image

from sandbox import catalog
from tests.sandbox.conftest import KEY, make_app


@pytest.fixture
async def strict():
    """A sandbox that refuses bad input at submit."""
    app = make_app(validate_on_submit=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test", headers=KEY) as c:
        yield c, app.state.sandbox
    await app.state.sandbox.aclose()


async def _input_schema(client, endpoint_id: str) -> dict:
    r = await client.get("/v1/models", params={"endpoint_id": endpoint_id, "expand": "openapi-3.0"})
    assert r.status_code == 200
    doc = r.json()["models"][0]["openapi"]
    ref = doc["paths"][f"/{endpoint_id}"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


CASES = [
    ("unknown field", {"prompt": "a fox", "colour": "red"}, ["body", "colour"], "extra_forbidden"),
    ("missing required", {"image_size": "square"}, ["body", "prompt"], "missing"),
    ("wrong type", {"prompt": "a fox", "num_images": "two"}, ["body", "num_images"], "int_type"),
    ("bad enum", {"prompt": "a fox", "image_size": "huge"}, ["body", "image_size"], "enum"),
    ("out of range", {"prompt": "a fox", "num_inference_steps": 0}, ["body", "num_inference_steps"],
     "greater_than_equal"),
]


@pytest.mark.parametrize(("what", "body", "loc", "kind"), CASES, ids=[c[0] for c in CASES])
async def test_strict_submit_answers_422_and_records_no_job(strict, what, body, loc, kind):
    client, state = strict
    r = await client.post("/fal-ai/flux/dev", json=body)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == loc and err["type"] == kind and isinstance(err["msg"], str) and err["msg"]
    assert r.headers["x-fal-request-id"]
    assert not state.queue.jobs  # nothing queued, nothing billed
    run = await client.post("/_run/fal-ai/flux/dev", json=body)  # the run host refuses it the same way
    assert run.status_code == 422 and run.json() == r.json() and not state.queue.jobs


async def test_strict_submit_refuses_unreadable_media_without_a_job(strict):
    client, state = strict
    r = await client.post("/fal-ai/whisper", json={"audio_url": "data:audio/wav;base64,AAAA"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "unsupported_audio_format"
    assert not state.queue.jobs


async def test_default_mode_queues_then_fails_with_the_same_detail(client, state):
    body = {"prompt": "a fox", "colour": "red"}
    sub = (await client.post("/fal-ai/flux/dev", json=body)).json()
    await state.advance(10)
    status = (await client.get(sub["status_url"])).json()
    assert status["status"] == "COMPLETED" and status["error_type"] == "validation_error"
    result = await client.get(sub["response_url"])
    assert result.status_code == 422 and result.json()["detail"][0]["type"] == "extra_forbidden"


async def test_validation_mode_control(client, state):
    r = await client.post("/_sandbox/validation", json={"on_submit": True})
    assert r.status_code == 200 and r.json()["validate_on_submit"] is True
    assert (await client.post("/fal-ai/flux/dev", json={})).status_code == 422 and not state.queue.jobs
    assert (await client.post("/_sandbox/validation", json={"on_submit": "yes"})).status_code == 422
    await client.post("/_sandbox/validation", json={"on_submit": False})
    assert (await client.post("/fal-ai/flux/dev", json={})).status_code == 200


async def test_errors_come_in_schema_order_and_clip_long_inputs(strict):
    client, _ = strict
    uri = "data:image/png;base64," + "A" * 5000
    r = await client.post("/fal-ai/flux/dev/image-to-image", json={"image_url": uri, "strength": 2, "zzz": 1})
    types = [(e["loc"][1], e["type"]) for e in r.json()["detail"]]
    assert types == [("prompt", "missing"), ("strength", "less_than_equal"), ("zzz", "extra_forbidden")]
    assert len(r.text) < 3000  # the 5 KB data URI is not echoed back whole


def _sample_media(kind: str) -> str:
    if kind == "image":
        buf = io.BytesIO()
        Image.new("RGB", (24, 16), (1, 2, 3)).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    if kind == "audio":
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
            w.writeframes(b"\x00\x00" * 800)
        return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", "x")
    return "data:application/zip;base64," + base64.b64encode(buf.getvalue()).decode()


def _sample(name: str, prop: dict, *, full: bool):
    """A value the published schema allows (the last enum value, the maximum, ...)."""
    if "x-fal-media" in prop:
        return _sample_media(prop["x-fal-media"])
    if "enum" in prop:
        return prop["enum"][-1]
    kind = prop["type"]
    if kind == "string":
        text = "a small red boat" if full else "x" * prop.get("minLength", 1)
        return text[:prop.get("maxLength", len(text))]
    if kind == "boolean":
        return not prop.get("default", False)
    if kind == "integer":
        return int(prop.get("maximum", 3)) if name != "seed" else 7
    return float(prop.get("maximum", 1.0))


@pytest.mark.parametrize("endpoint", [e.endpoint_id for e in catalog.endpoints()])
async def test_every_published_schema_matches_what_the_generator_accepts(strict, endpoint):
    client, state = strict
    schema = await _input_schema(client, endpoint)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    props = schema["properties"]
    assert set(schema["required"]) <= set(props)
    for name, prop in props.items():
        assert prop["type"] in ("string", "integer", "number", "boolean"), (name, prop)
        if name.endswith("_url"):
            assert prop["format"] == "uri" and prop["x-fal-media"] and prop["description"]
        if "default" in prop:
            jsonschema.Draft4Validator(prop).validate(prop["default"])  # defaults are valid values
    minimal = {n: _sample(n, props[n], full=False) for n in schema["required"]}
    full = {n: _sample(n, p, full=True) for n, p in props.items()}
    for body in (minimal, full):
        jsonschema.Draft4Validator(schema).validate(body)  # valid by the published document...
        r = await client.post(f"/{endpoint}", json=body)
        assert r.status_code == 200, (body, r.text)  # ...and by the sandbox
    await state.advance(5000)
    for job in list(state.queue.jobs.values()):
        assert job.result_status == 200, job.result_body  # and the generator copes with it
        await asyncio.sleep(0)
