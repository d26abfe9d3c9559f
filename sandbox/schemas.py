"""Input schemas per endpoint family, and a validator that answers in FastAPI's 422 shape."""

from __future__ import annotations

from typing import Any

# field -> spec. "type" is a JSON-schema type; "required" defaults to False.
_SEED = {"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "description": "Random seed; same seed, same output."}
_IMAGE_SIZES = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]

FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    "t2i": {
        "prompt": {"type": "string", "required": True, "minLength": 1, "description": "What to draw."},
        "image_size": {"type": "string", "enum": _IMAGE_SIZES, "default": "landscape_4_3"},
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28},
        "guidance_scale": {"type": "number", "minimum": 1, "maximum": 20, "default": 3.5},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        "seed": _SEED,
        "enable_safety_checker": {"type": "boolean", "default": True},
    },
    "i2i": {
        "image_url": {"type": "string", "required": True, "minLength": 1, "description": "Source image URL."},
        "prompt": {"type": "string", "required": True, "minLength": 1},
        "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.95},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        "seed": _SEED,
    },
    "upscale": {
        "image_url": {"type": "string", "required": True, "minLength": 1},
        "scale": {"type": "number", "minimum": 1, "maximum": 8, "default": 2},
        "seed": _SEED,
    },
    "i2v": {
        "prompt": {"type": "string", "required": True, "minLength": 1},
        "image_url": {"type": "string", "required": True, "minLength": 1},
        "duration": {"type": "string", "enum": ["5", "10"], "default": "5"},
        "seed": _SEED,
    },
    "t2v": {
        "prompt": {"type": "string", "required": True, "minLength": 1},
        "duration": {"type": "string", "enum": ["5", "8", "10"], "default": "5"},
        "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1"], "default": "16:9"},
        "seed": _SEED,
    },
    "tts": {
        "text": {"type": "string", "required": True, "minLength": 1, "description": "Text to speak."},
        "voice": {"type": "string", "default": "af_heart"},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4, "default": 1.0},
    },
    "stt": {
        "audio_url": {"type": "string", "required": True, "minLength": 1},
        "task": {"type": "string", "enum": ["transcribe", "translate"], "default": "transcribe"},
        "language": {"type": "string"},
    },
    "audio": {
        "prompt": {"type": "string", "required": True, "minLength": 1},
        "seconds_total": {"type": "number", "minimum": 1, "maximum": 190, "default": 10},
        "seed": _SEED,
    },
    "separate": {
        "audio_url": {"type": "string", "required": True, "minLength": 1},
        "seed": _SEED,
    },
    "3d": {
        "image_url": {"type": "string", "required": True, "minLength": 1},
        "seed": _SEED,
        "texture_size": {"type": "integer", "enum": [512, 1024, 2048], "default": 1024},
    },
    "train": {
        "images_data_url": {"type": "string", "required": True, "minLength": 1,
                            "description": "URL of a zip archive of training images."},
        "steps": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
        "trigger_word": {"type": "string"},
        "learning_rate": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0004},
    },
}

_TYPE_CHECKS = {
    "string": (lambda v: isinstance(v, str), "string_type", "Input should be a valid string"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "int_type",
                "Input should be a valid integer"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "float_type",
               "Input should be a valid number"),
    "boolean": (lambda v: isinstance(v, bool), "bool_type", "Input should be a valid boolean"),
}


def _err(kind: str, loc: list[Any], msg: str, value: Any, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value,
                            "url": f"https://errors.pydantic.dev/2.10/v/{kind}"}
    if ctx:
        item["ctx"] = ctx
    return item


def _check_field(name: str, spec: dict[str, Any], value: Any) -> dict[str, Any] | None:
    loc = ["body", name]
    check, kind, msg = _TYPE_CHECKS[spec["type"]]
    if not check(value):
        return _err(kind, loc, msg, value)
    if "enum" in spec and value not in spec["enum"]:
        allowed = ", ".join(repr(v) for v in spec["enum"])
        return _err("enum", loc, f"Input should be {allowed}", value, {"expected": allowed})
    if "minLength" in spec and len(value) < spec["minLength"]:
        return _err("string_too_short", loc, f"String should have at least {spec['minLength']} character",
                    value, {"min_length": spec["minLength"]})
    if "minimum" in spec and value < spec["minimum"]:
        return _err("greater_than_equal", loc, f"Input should be greater than or equal to {spec['minimum']}",
                    value, {"ge": spec["minimum"]})
    if "maximum" in spec and value > spec["maximum"]:
        return _err("less_than_equal", loc, f"Input should be less than or equal to {spec['maximum']}",
                    value, {"le": spec["maximum"]})
    return None


def validate_input(family: str, body: Any) -> list[dict[str, Any]]:
    """FastAPI-style `detail` entries for everything wrong with `body`; empty when valid."""
    if not isinstance(body, dict):
        return [_err("model_attributes_type", ["body"], "Input should be a valid dictionary or object", body)]
    errors = []
    for name, spec in FAMILIES[family].items():
        if name not in body:
            if spec.get("required"):
                errors.append(_err("missing", ["body", name], "Field required", body))
            continue
        if body[name] is None and not spec.get("required"):
            continue
        problem = _check_field(name, spec, body[name])
        if problem:
            errors.append(problem)
    return errors


def with_defaults(family: str, body: dict[str, Any]) -> dict[str, Any]:
    """The input with every documented default filled in."""
    merged = {k: spec["default"] for k, spec in FAMILIES[family].items() if "default" in spec}
    merged.update({k: v for k, v in body.items() if v is not None})
    return merged


def json_schema(family: str) -> dict[str, Any]:
    """The family's input as an OpenAPI 3.0 schema object."""
    props = {}
    for name, spec in FAMILIES[family].items():
        props[name] = {k: v for k, v in spec.items() if k != "required"}
        props[name]["title"] = name.replace("_", " ").title()
    required = [n for n, s in FAMILIES[family].items() if s.get("required")]
    return {"type": "object", "title": "Input", "properties": props, "required": required}
