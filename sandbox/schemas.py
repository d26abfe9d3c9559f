"""Input schemas per endpoint family, and a validator that answers in FastAPI's 422 shape.

The schema an endpoint publishes (`GET /v1/models?endpoint_id=X&expand=openapi-3.0`,
`components.schemas.Input`) is `json_schema(family)`, and submits are checked with
`jsonschema` against that very document, so what the sandbox says and what it accepts cannot
drift apart. Published facts: required fields, types, enums, ranges, defaults; media inputs
are `format: uri` strings with `x-fal-media` naming the kind (image, audio, archive);
`additionalProperties: false` (an unknown field is refused, as pydantic's `extra="forbid"`);
optional fields are `nullable` (null means "use the default"). Errors come out as pydantic
v2 would word them: `{"type", "loc": ["body", field, ...], "msg", "input", "url", "ctx"?}`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any
from urllib.parse import urlsplit

import jsonschema

_SEED = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "description": "Random seed; same seed, same output."}
_IMAGE_SIZES = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
_WHERE = ("a file uploaded to the sandbox (fal_client.upload_file / the CDN routes), a data: URI, or a "
          "loopback http(s) URL; the sandbox fetches nothing from the internet")


def _media(kind: str, what: str) -> dict[str, Any]:
    return {"type": "string", "required": True, "minLength": 1, "format": "uri", "x-fal-media": kind,
            "description": f"URL of {what}: {_WHERE}."}


# field -> spec. "type" is a JSON-schema type; "required" defaults to False.
FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    "t2i": {
        "prompt": {"type": "string", "required": True, "minLength": 1, "maxLength": 10000,
                   "description": "What to draw; the sandbox writes the prompt's words into the picture."},
        "image_size": {"type": "string", "enum": _IMAGE_SIZES, "default": "landscape_4_3"},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28},
        "guidance_scale": {"type": "number", "minimum": 1, "maximum": 20, "default": 3.5},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        "seed": _SEED,
        "enable_safety_checker": {"type": "boolean", "default": True},
    },
    "i2i": {
        "image_url": _media("image", "the source image (PNG, JPEG, WebP or GIF)"),
        "prompt": {"type": "string", "required": True, "minLength": 1, "maxLength": 10000,
                   "description": "The edit; drawn into the bottom fifth of the result."},
        "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.95,
                     "description": "How far to move from the source (0 keeps it, 1 changes most)."},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        "seed": _SEED,
    },
    "upscale": {
        "image_url": _media("image", "the image to upscale (PNG, JPEG, WebP or GIF)"),
        "scale": {"type": "number", "minimum": 1, "maximum": 4, "default": 2,
                  "description": "Upscale factor; the result is capped at 2048 px a side."},
        "seed": _SEED,
    },
    "i2v": {
        "prompt": {"type": "string", "required": True, "minLength": 1, "maxLength": 10000},
        "image_url": _media("image", "the first frame (PNG, JPEG, WebP or GIF)"),
        "duration": {"type": "string", "enum": ["5", "10"], "default": "5", "description": "Seconds of video."},
        "seed": _SEED,
    },
    "t2v": {
        "prompt": {"type": "string", "required": True, "minLength": 1, "maxLength": 10000},
        "duration": {"type": "string", "enum": ["5", "8", "10"], "default": "5"},
        "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1"], "default": "16:9"},
        "seed": _SEED,
    },
    "tts": {
        "text": {"type": "string", "required": True, "minLength": 1, "maxLength": 5000, "description": "Text to speak."},
        "voice": {"type": "string", "default": "af_heart"},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4, "default": 1.0},
    },
    "stt": {
        "audio_url": _media("audio", "the audio to transcribe (WAV)"),
        "task": {"type": "string", "enum": ["transcribe", "translate"], "default": "transcribe"},
        "language": {"type": "string", "minLength": 2, "maxLength": 8, "description": "Language code, e.g. 'en'."},
    },
    "audio": {
        "prompt": {"type": "string", "required": True, "minLength": 1, "maxLength": 10000},
        "seconds_total": {"type": "number", "minimum": 1, "maximum": 190, "default": 10,
                          "description": "Requested length; the sandbox's clips stop at 3 s."},
        "seed": _SEED,
    },
    "separate": {
        "audio_url": _media("audio", "the audio to split into stems"),
        "seed": _SEED,
    },
    "3d": {
        "image_url": _media("image", "the object's picture (PNG, JPEG, WebP or GIF)"),
        "seed": _SEED,
        "texture_size": {"type": "integer", "enum": [512, 1024, 2048], "default": 1024},
    },
    "train": {
        "images_data_url": _media("archive", "a zip archive of training images"),
        "steps": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
        "trigger_word": {"type": "string", "maxLength": 100},
        "learning_rate": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0004},
    },
}

_TYPE_ERRORS = {"string": ("string_type", "Input should be a valid string"),
                "integer": ("int_type", "Input should be a valid integer"),
                "number": ("float_type", "Input should be a valid number"),
                "boolean": ("bool_type", "Input should be a valid boolean"),
                "object": ("model_attributes_type", "Input should be a valid dictionary or object")}
_MEDIA_SCHEMES = ("http", "https", "data")


def _err(kind: str, loc: list[Any], msg: str, value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": clip(value),
                            "url": f"https://errors.pydantic.dev/2.10/v/{kind}"}
    if ctx:
        item["ctx"] = ctx
    return item


def clip(value: Any, limit: int = 200) -> Any:
    """`value` with long strings cut (a data: URI must not be echoed back whole)."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "..."
    if isinstance(value, dict):
        return {k: clip(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [clip(v, limit) for v in value]
    return value


def json_schema(family: str) -> dict[str, Any]:
    """The family's input as an OpenAPI 3.0 schema object (what the platform API publishes)."""
    props = {}
    for name, spec in FAMILIES[family].items():
        prop = {k: copy.deepcopy(v) for k, v in spec.items() if k != "required"}
        prop["title"] = name.replace("_", " ").title()
        if not spec.get("required"):
            prop["nullable"] = True
        props[name] = prop
    required = [n for n, s in FAMILIES[family].items() if s.get("required")]
    return {"type": "object", "title": "Input", "properties": props, "required": required,
            "additionalProperties": False}


def media_fields(family: str) -> dict[str, str]:
    """Field name -> media kind (image, audio, archive) for the family's URL inputs."""
    return {n: s["x-fal-media"] for n, s in FAMILIES[family].items() if "x-fal-media" in s}


_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("uri", raises=ValueError)
def _is_media_url(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    if not parts.scheme:
        raise ValueError("url_parsing")
    if parts.scheme not in _MEDIA_SCHEMES:
        raise ValueError("url_scheme")
    if parts.scheme != "data" and not parts.netloc:
        raise ValueError("url_parsing")
    return True


@functools.cache
def _validator(family: str) -> jsonschema.Draft4Validator:
    schema = json_schema(family)
    return jsonschema.Draft4Validator(schema, format_checker=_FORMATS)


def _one(error: jsonschema.ValidationError) -> dict[str, Any] | None:
    loc = ["body", *error.absolute_path]
    value, rule, want = error.instance, error.validator, error.validator_value
    if rule == "type":
        kind, msg = _TYPE_ERRORS.get(want if isinstance(want, str) else "string", _TYPE_ERRORS["string"])
        return _err(kind, loc, msg, value)
    if rule == "enum":
        shown = [repr(v) for v in want]
        expected = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
        return _err("enum", loc, f"Input should be {expected}", value, {"expected": expected})
    if rule == "minLength":
        unit = "character" if want == 1 else "characters"
        return _err("string_too_short", loc, f"String should have at least {want} {unit}", value,
                    {"min_length": want})
    if rule == "maxLength":
        return _err("string_too_long", loc, f"String should have at most {want} characters", value,
                    {"max_length": want})
    if rule == "minimum":
        return _err("greater_than_equal", loc, f"Input should be greater than or equal to {want}", value,
                    {"ge": want})
    if rule == "maximum":
        return _err("less_than_equal", loc, f"Input should be less than or equal to {want}", value, {"le": want})
    if rule == "format":
        cause = str(error.cause) if error.cause is not None else "url_parsing"
        if cause == "url_scheme":
            return _err("url_scheme", loc, "URL scheme should be 'http', 'https' or 'data'", value,
                        {"expected_schemes": "'http', 'https' or 'data'"})
        return _err("url_parsing", loc, "Input should be a valid URL", value)
    if rule in ("required", "additionalProperties"):
        return None  # reported field by field by validate_input
    return _err("value_error", loc, error.message, value)


def validate_input(family: str, body: Any) -> list[dict[str, Any]]:
    """FastAPI-style `detail` entries for everything wrong with `body`; empty when valid.

    Order: the schema's field order (missing and invalid fields alike), unknown fields last."""
    if not isinstance(body, dict):
        return [_err("model_attributes_type", ["body"], "Input should be a valid dictionary or object", body)]
    fields = FAMILIES[family]
    present = {k: v for k, v in body.items() if not (v is None and k in fields and not fields[k].get("required"))}
    order = {name: i for i, name in enumerate(fields)}
    found: list[tuple[int, dict[str, Any]]] = []
    for name, spec in fields.items():
        if spec.get("required") and name not in present:
            found.append((order[name], _err("missing", ["body", name], "Field required", body)))
    for error in _validator(family).iter_errors(present):
        item = _one(error)
        if item is not None:
            head = item["loc"][1] if len(item["loc"]) > 1 else None
            found.append((order.get(head, len(order)) if isinstance(head, str) else len(order), item))
    for name in body:
        if name not in fields:
            found.append((len(order) + 1, _err("extra_forbidden", ["body", name], "Extra inputs are not permitted",
                                               body[name])))
    found.sort(key=lambda pair: pair[0])
    return [item for _, item in found]


def with_defaults(family: str, body: dict[str, Any]) -> dict[str, Any]:
    """The input with every documented default filled in."""
    merged = {k: spec["default"] for k, spec in FAMILIES[family].items() if "default" in spec}
    merged.update({k: v for k, v in body.items() if v is not None})
    return merged
