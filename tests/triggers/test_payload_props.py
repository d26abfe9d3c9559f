"""Property tests for the payload parser: only PayloadError ever escapes; valid bodies round-trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.triggers.payload import PayloadError, WebhookPayload, parse_webhook_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
request_ids = st.text(min_size=1, max_size=60)
# The CPU is shared with other work; timing health checks would make the tests flaky, not stricter.
RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=300, **RELAXED)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_payload_error(data):
    try:
        parse_webhook_body(data, expected_request_id="r")
    except PayloadError as exc:
        assert exc.reason in ("invalid_json", "invalid_payload", "request_id_mismatch")


@settings(max_examples=300, **RELAXED)
@given(st.dictionaries(st.sampled_from(["request_id", "status", "payload", "error", "payload_error",
                                        "gateway_request_id", "extra"]), json_values, max_size=7))
def test_arbitrary_objects_raise_only_payload_error(doc):
    try:
        parsed = parse_webhook_body(json.dumps(doc).encode())
    except PayloadError:
        return
    assert parsed.status in ("OK", "ERROR")
    assert parsed.payload is not None or parsed.payload_error is not None or parsed.error


@st.composite
def valid_bodies(draw):
    rid = draw(request_ids)
    status = draw(st.sampled_from(["OK", "ERROR"]))
    doc = {"request_id": rid, "gateway_request_id": rid, "status": status,
           "error": None if status == "OK" else draw(st.text(min_size=1, max_size=30))}
    if draw(st.booleans()):
        doc["payload"] = draw(json_values.filter(lambda v: v is not None))
    else:
        doc["payload"] = None
        doc["payload_error"] = draw(st.text(max_size=40))
    return doc


@settings(max_examples=300, **RELAXED)
@given(valid_bodies(), st.booleans())
def test_valid_bodies_round_trip(doc, sort_keys):
    raw = json.dumps(doc, sort_keys=sort_keys).encode()
    parsed = parse_webhook_body(raw, expected_request_id=doc["request_id"])
    assert parsed.model_dump(exclude_unset=True) == doc
    again = parse_webhook_body(parsed.model_dump_json().encode(), expected_request_id=doc["request_id"])
    assert again == parsed


@settings(**RELAXED)
@given(valid_bodies(), request_ids)
def test_request_id_must_match_the_header(doc, other):
    raw = json.dumps(doc).encode()
    if other == doc["request_id"]:
        return
    with pytest.raises(PayloadError) as info:
        parse_webhook_body(raw, expected_request_id=other)
    assert info.value.reason == "request_id_mismatch"


def test_deep_nesting_is_a_payload_error_not_a_crash():
    with pytest.raises(PayloadError):
        parse_webhook_body(b"[" * 100_000 + b"]" * 100_000)
    deep = b'{"request_id": "r", "status": "OK", "payload": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    try:
        parse_webhook_body(deep)
    except PayloadError:
        pass


def test_model_keeps_unknown_fields():
    parsed = WebhookPayload.model_validate({"request_id": "r", "status": "OK", "payload": {}, "new": 1})
    assert parsed.model_extra == {"new": 1}


@settings(max_examples=300, **RELAXED)
@given(st.dictionaries(st.sampled_from(["request_id", "status", "payload", "error", "payload_error", "x"]),
                       json_values, max_size=6))
def test_the_fast_parser_agrees_with_the_strict_one(document):
    from agent.triggers.payload import _parse_fast, _parse_strict

    body = json.dumps(document).encode()
    fast = _parse_fast(body)
    try:
        strict = _parse_strict(body)
    except PayloadError:
        assert fast is None  # whatever the strict path refuses, the fast one never accepts
        return
    assert fast is None or fast == strict
