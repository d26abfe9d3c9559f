"""Response models: tolerant of new fields, strict on the ones we rely on."""

from __future__ import annotations

import json

import pytest
from fal_fakes import MODELS

from tools.fal import errors as E
from tools.fal.mapping import parse_json, parse_model
from tools.fal.models import (
    EstimateResponse,
    Jwks,
    ModelsPage,
    PricingResponse,
    QueueStatus,
    SubmitResponse,
)


def test_status_keeps_unknown_fields_and_parses_logs():
    body = {"status": "IN_PROGRESS", "request_id": "r", "logs": [
        {"message": "step 1", "level": "INFO", "source": "USER", "timestamp": "t", "labels": {},
         "new_log_field": 1}], "metrics": {}, "added_later": {"x": 1}}
    st = parse_model(QueueStatus, json.dumps(body).encode())
    assert st.status == "IN_PROGRESS" and st.logs[0].message == "step 1"
    assert st.model_extra["added_later"] == {"x": 1}
    assert st.logs[0].model_extra["new_log_field"] == 1
    assert not st.done and not st.failed


def test_completed_with_error_is_failed():
    st = QueueStatus.model_validate({"status": "COMPLETED", "error": "Invalid status code: 422",
                                     "error_type": "validation_error", "logs": None})
    assert st.done and st.failed


@pytest.mark.parametrize("body", [
    {"request_id": "r"},                      # status missing
    {"status": "FAILED"},                     # fal never sends this; refuse, do not guess
    {"status": "IN_QUEUE", "queue_position": "first"},
])
def test_status_is_strict_on_relied_fields(body):
    with pytest.raises(E.InvalidResponseError) as info:
        parse_model(QueueStatus, json.dumps(body).encode(), request_id="rid-1")
    assert info.value.request_id == "rid-1"
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("raw", [b"", b"<html>502 Bad Gateway</html>", b'{"status": "IN_QU'])
def test_non_json_and_truncated_bodies(raw):
    with pytest.raises(E.InvalidResponseError, match="not valid JSON"):
        parse_model(QueueStatus, raw)
    with pytest.raises(E.InvalidResponseError):
        parse_json(raw)


def test_submit_requires_request_id():
    ok = SubmitResponse.model_validate({"request_id": "r", "status": "IN_QUEUE",
                                        "queue_position": 0, "gateway_request_id": "g"})
    assert ok.request_id == "r"
    with pytest.raises(E.InvalidResponseError):
        parse_model(SubmitResponse, b'{"status": "IN_QUEUE"}')


def test_models_page_with_and_without_metadata():
    page = ModelsPage.model_validate({"models": MODELS, "has_more": True, "next_cursor": "Mw=="})
    assert [m.endpoint_id for m in page.models] == [m["endpoint_id"] for m in MODELS]
    assert page.models[0].metadata.display_name == "FLUX.1 [dev]"
    assert page.models[0].metadata.model_extra["brand_new_field"] == 1
    assert page.models[0].openapi["openapi"] == "3.0.4"
    assert page.models[2].metadata is None
    with pytest.raises(E.InvalidResponseError):
        parse_model(ModelsPage, b'{"models": []}')  # has_more is required


def test_pricing_estimate_and_jwks():
    p = PricingResponse.model_validate({"prices": [{"endpoint_id": "a/b", "unit_price": 0.02,
                                                    "unit": "image", "currency": "USD"}],
                                        "next_cursor": None, "has_more": False})
    assert p.prices[0].unit_price == 0.02
    with pytest.raises(E.InvalidResponseError):
        parse_model(PricingResponse, b'{"prices": [{"endpoint_id": "a/b", "unit_price": -1, '
                                     b'"unit": "image", "currency": "USD"}]}')
    e = EstimateResponse.model_validate({"estimate_type": "unit_price", "total_cost": 0.0376,
                                         "currency": "USD", "breakdown": []})
    assert e.total_cost == 0.0376
    j = Jwks.model_validate({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "use": "sig"}]})
    assert j.keys[0].x == "abc" and j.keys[0].model_extra["use"] == "sig"
    with pytest.raises(E.InvalidResponseError):
        parse_model(Jwks, b'{"keys": [{"kty": "OKP"}]}')
