"""Argument schemas of the fal.ai tools, written for an LLM to fill in correctly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EXAMPLE_ENDPOINT", "EXAMPLE_REQUEST", "RequestArgs", "StatusArgs", "StreamArgs", "SubmitArgs", "SearchArgs",
    "PricingArgs", "EstimateArgs", "JwksArgs", "LifecyclePreset", "UploadArgs"
]


EXAMPLE_ENDPOINT = "fal-ai/flux/dev"
EXAMPLE_REQUEST = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"

_ENDPOINT_DESC = (
    "The full fal.ai endpoint id the request was submitted to, exactly as the user or "
    "search_models gave it: 'owner/app' or 'owner/app/sub/path', e.g. 'fal-ai/flux/dev' or "
    "'fal-ai/flux-pro/v1.1-ultra'. Not a URL.")
_REQUEST_DESC = (
    "The request id returned by submit_queue_request (a UUID such as "
    f"'{EXAMPLE_REQUEST}').")


def _endpoint() -> Any:
    return Field(description=_ENDPOINT_DESC, min_length=1,
                 examples=[EXAMPLE_ENDPOINT, "fal-ai/fast-sdxl"])


def _request() -> Any:
    return Field(description=_REQUEST_DESC, min_length=1, examples=[EXAMPLE_REQUEST])


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestArgs(_Args):
    """Identify one queued request."""

    endpoint_id: str = _endpoint()
    request_id: str = _request()


class StatusArgs(RequestArgs):
    """Poll one request's status once."""

    logs: bool = Field(default=False, description=(
        "True to include the runner's log lines (progress messages); False keeps the answer "
        "short."))


class StreamArgs(RequestArgs):
    """Follow one request until it completes."""

    logs: bool = Field(default=True, description="True to include runner log lines as they arrive.")
    timeout_s: float = Field(default=120.0, gt=0, le=3600, description=(
        "Stop waiting after this many seconds (the request keeps running on fal.ai); "
        "e.g. 60 for an image, 600 for a video."), examples=[60, 600])


class SubmitArgs(_Args):
    """Queue a new request on a fal.ai model (this costs money)."""

    endpoint_id: str = Field(description=(
        "The fal.ai endpoint to run, e.g. 'fal-ai/flux/dev' (text-to-image) or "
        "'fal-ai/kling-video/v2/master/text-to-video'. Use search_models to find one."),
        min_length=1, examples=[EXAMPLE_ENDPOINT])
    arguments: dict[str, Any] = Field(description=(
        "The model's input as a JSON object, per its schema (search_models with "
        "expand_openapi=true shows it), e.g. {\"prompt\": \"a red fox in snow\", "
        "\"image_size\": \"landscape_4_3\"}."),
        examples=[{"prompt": "a red fox in snow, watercolor"}])
    webhook_url: str | None = Field(default=None, description=(
        "Optional https URL fal.ai should POST the result to when the request finishes."),
        examples=["https://example.com/fal/webhook"])
    priority: Literal["normal", "low"] = Field(default="normal", description=(
        "Queue priority: 'normal', or 'low' for work that can wait behind normal requests."))
    start_timeout_s: float | None = Field(default=None, gt=1, description=(
        "Optional: give up if the request has not STARTED within this many seconds "
        "(must be more than 1). Processing time is not limited."), examples=[30])


class SearchArgs(_Args):
    """Find fal.ai models."""

    query: str | None = Field(default=None, description=(
        "Free-text search over name, description and category, e.g. 'flux' or 'upscale'."),
        examples=["flux"])
    category: str | None = Field(default=None, description=(
        "Only this category, e.g. 'text-to-image', 'image-to-video', 'text-to-speech', "
        "'training'."), examples=["text-to-image"])
    status: Literal["active", "deprecated"] | None = Field(default=None, description=(
        "'active' or 'deprecated'; leave empty for both."))
    endpoint_ids: list[str] | None = Field(default=None, max_length=50, description=(
        "Look up these exact endpoint ids (1-50), e.g. ['fal-ai/flux/dev']."),
        examples=[[EXAMPLE_ENDPOINT]])
    limit: int = Field(default=20, ge=1, le=100, description="Models per page (1-100).")
    cursor: str | None = Field(default=None, description=(
        "The next_cursor from a previous search_models answer, to get the next page."),
        examples=["Mg=="])
    expand_openapi: bool = Field(default=False, description=(
        "True to include each model's OpenAPI input/output schema in the artifact (large)."))
    input_fields: bool = Field(default=False, description=(
        "True to list each model's input fields in short form (name, type, required, allowed "
        "values, default, media URL fields): what submit_queue_request's arguments take."))


class PricingArgs(_Args):
    """Look up unit prices."""

    endpoint_ids: list[str] = Field(min_length=1, max_length=50, description=(
        "1-50 endpoint ids to price, e.g. ['fal-ai/flux/dev', 'fal-ai/flux/schnell']."),
        examples=[[EXAMPLE_ENDPOINT, "fal-ai/flux/schnell"]])


class EstimateArgs(_Args):
    """Estimate what a batch of calls would cost."""

    estimate_type: Literal["historical_api_price", "unit_price"] = Field(description=(
        "'historical_api_price': quantities are numbers of API calls (whole numbers >= 1); "
        "'unit_price': quantities are billing units such as images, seconds or megapixels "
        "(>= 0.000001)."), examples=["historical_api_price"])
    endpoints: dict[str, float] = Field(min_length=1, description=(
        "Map of endpoint id to quantity, e.g. {\"fal-ai/flux/dev\": 10, "
        "\"fal-ai/flux/schnell\": 50}."),
        examples=[{EXAMPLE_ENDPOINT: 10}])


class JwksArgs(_Args):
    """No arguments."""


LifecyclePreset = Literal["never", "immediate", "1h", "1d", "7d", "30d", "1y"]


class UploadArgs(_Args):
    """Upload one local file to fal.ai's CDN."""

    path: str = Field(min_length=1, description=(
        "Path of one local file to upload, e.g. '~/Pictures/fox.png' or '/tmp/clip.mp4' "
        "(not a folder, not a URL)."), examples=["~/Pictures/fox.png"])
    lifecycle: LifecyclePreset | Annotated[int, Field(gt=0)] | None = Field(
        default=None, description=(
            "How long fal keeps the file: 'never' (expires never), 'immediate', '1h', '1d', "
            "'7d', '30d', '1y', or a number of seconds; leave empty for fal's default."),
        examples=["1d", 3600])
    content_type: str | None = Field(default=None, description=(
        "MIME type to store the file with, e.g. 'image/png'; leave empty to guess it from "
        "the file name."), examples=["image/png"])
