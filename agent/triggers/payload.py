"""The body of a fal.ai webhook (shared/fal-api.md §4.3), parsed and validated.

`parse_webhook_body` is the only way bytes become a :class:`WebhookPayload`; it raises only
:class:`PayloadError`, whatever the bytes are (the property tests hold it to that).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tools.errors import AppError


class PayloadError(AppError):
    """The body is not a valid fal webhook; ``reason`` is a short code, ``detail`` says why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class WebhookPayload(BaseModel):
    """A fal webhook body.

    ``payload`` is the model output on OK and the error body on ERROR; it is null only when
    fal could not serialise the output, and then ``payload_error`` says so (an ERROR delivery
    may instead carry its message in ``error``). Unknown keys are kept, so a field fal adds
    later survives in the inbox.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    request_id: str = Field(min_length=1, max_length=200)
    gateway_request_id: str | None = None
    status: Literal["OK", "ERROR"]
    payload: Any = None
    error: str | None = None
    payload_error: str | None = None

    @model_validator(mode="after")
    def _null_payload_is_explained(self) -> WebhookPayload:
        if self.payload is None and self.payload_error is None:
            if not (self.status == "ERROR" and self.error):
                raise ValueError("payload is null but neither payload_error nor error says why")
        return self


def _reject_constant(name: str) -> Any:
    """json.loads hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every call: json.loads with a hook would build a new one each time.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_webhook_body(body: bytes, *, expected_request_id: str | None = None) -> WebhookPayload:
    """Parse and validate raw webhook bytes; the body's request_id must match the signed header's."""
    parsed = _parse_fast(body)
    if parsed is None:
        parsed = _parse_strict(body)
    if expected_request_id is not None and parsed.request_id != expected_request_id:
        raise PayloadError("request_id_mismatch", "body request_id differs from the signed header")
    return parsed


def _parse_fast(body: bytes) -> WebhookPayload | None:
    """pydantic's own JSON parser, one pass (half the time of json + validate); None unless sure.

    It is only trusted to accept: anything it rejects, and any body where it could differ
    from the strict path (NaN or Infinity tokens, which it would take; a body that does not
    start with "{", e.g. a BOM or another encoding), goes to _parse_strict, which decides and
    words every error.
    """
    if body[:1] != b"{" or b"NaN" in body or b"Infinity" in body:
        return None
    try:
        return WebhookPayload.model_validate_json(body)
    except (ValueError, RecursionError):  # ValidationError is a ValueError
        return None


def _parse_strict(body: bytes) -> WebhookPayload:
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads does
        document = _DECODER.decode(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError("invalid_json", type(exc).__name__) from None
    except RecursionError:
        raise PayloadError("invalid_json", "nested too deeply") from None
    if not isinstance(document, dict):
        raise PayloadError("invalid_payload", "the body is not a JSON object")
    try:
        parsed = WebhookPayload.model_validate(document)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in err["loc"]) or "body" for err in exc.errors()})
        raise PayloadError("invalid_payload", ", ".join(fields)[:200]) from None
    except RecursionError:
        raise PayloadError("invalid_payload", "nested too deeply") from None
    return parsed
