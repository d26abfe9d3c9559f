"""The verifier against the shared test vectors, and its edge cases one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.webhooks import (
    REASONS,
    WebhookVerificationError,
    parse_jwks,
    verify_webhook,
)

VECTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "webhook-vectors.json"


def _vectors() -> dict:
    if not VECTORS.exists():
        pytest.skip(f"shared test vectors not found at {VECTORS} (shared/ must sit beside the checkout)")
    return json.loads(VECTORS.read_text())


def test_every_shared_vector_is_judged_right():
    data = _vectors()
    keys = parse_jwks(data["jwks"])
    assert len(keys) == len(data["jwks"]["keys"])
    assert data["cases"], "the vector file has no cases"
    for case in data["cases"]:
        body = case["body"].encode()
        try:
            verify_webhook(case["headers"], body, keys, now=data["now"])
            valid, reason = True, None
        except WebhookVerificationError as exc:
            valid, reason = False, exc.reason
        assert valid is case["expect_valid"], f"{case['name']}: got {reason}"
        assert reason is None or reason in REASONS


def test_vectors_fail_with_the_clock_moved_and_with_one_key_missing():
    data = _vectors()
    keys = parse_jwks(data["jwks"])
    first_valid = next(c for c in data["cases"] if c["expect_valid"])
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(first_valid["headers"], first_valid["body"].encode(), keys, now=data["now"] + 10_000)
    assert info.value.reason == "timestamp_out_of_range"
    rotation = next(c for c in data["cases"] if "second key" in c["name"])
    with pytest.raises(WebhookVerificationError, match="bad_signature"):
        verify_webhook(rotation["headers"], rotation["body"].encode(), keys[:1], now=data["now"])


def _signed(signer, body=b'{"a": 1}', rid="req-1", **kw):
    return signer.headers(body, rid, timestamp=kw.pop("timestamp", 1_800_000_000), **kw), body


def _reason(headers, body, keys, now=1_800_000_000):
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(headers, body, keys, now=now)
    return info.value.reason


def test_header_names_are_case_insensitive(signer):
    headers, body = _signed(signer)
    keys = [bytes(signer.key.verify_key)]
    verify_webhook({k.upper(): v for k, v in headers.items()}, body, keys, now=1_800_000_000)
    verify_webhook({k.lower(): v for k, v in headers.items()}, body, keys, now=1_800_000_000)


@pytest.mark.parametrize("name", ["X-Fal-Webhook-Request-Id", "X-Fal-Webhook-User-Id",
                                  "X-Fal-Webhook-Timestamp", "X-Fal-Webhook-Signature"])
def test_each_header_is_required_and_empty_counts_as_missing(signer, name):
    headers, body = _signed(signer)
    keys = [bytes(signer.key.verify_key)]
    assert _reason({k: v for k, v in headers.items() if k != name}, body, keys) == "missing_header"
    assert _reason({**headers, name: ""}, body, keys) == "missing_header"


def test_duplicate_signed_header_is_refused(signer):
    from starlette.datastructures import Headers

    headers, body = _signed(signer)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"x-fal-webhook-request-id", b"other"))
    assert _reason(Headers(raw=raw), body, [bytes(signer.key.verify_key)]) == "duplicate_header"


@pytest.mark.parametrize("ts", ["abc", "1.5e9", "+1800000000", " 1800000000", "-1", "1_800_000_000",
                                "١٨٠٠٠٠٠٠٠٠", "9" * 40])
def test_timestamp_must_be_plain_integer(signer, ts):
    headers, body = _signed(signer)
    headers["X-Fal-Webhook-Timestamp"] = ts
    assert _reason(headers, body, [bytes(signer.key.verify_key)]) == "bad_timestamp"


def test_timestamp_window_is_inclusive_at_300s(signer):
    keys = [bytes(signer.key.verify_key)]
    for offset in (-300, 300):
        headers, body = _signed(signer, timestamp=1_800_000_000 + offset)
        verify_webhook(headers, body, keys, now=1_800_000_000)
    for offset in (-301, 301):
        headers, body = _signed(signer, timestamp=1_800_000_000 + offset)
        assert _reason(headers, body, keys) == "timestamp_out_of_range"


@pytest.mark.parametrize("sig", ["zz" * 64, "ab" * 63, "ab" * 65, "ab" * 64 + " ", ""])
def test_signature_must_be_128_hex_chars(signer, sig):
    headers, body = _signed(signer)
    headers["X-Fal-Webhook-Signature"] = sig
    expected = "missing_header" if sig == "" else "bad_signature_encoding"
    assert _reason(headers, body, [bytes(signer.key.verify_key)]) == expected


def test_uppercase_hex_signature_still_verifies(signer):
    headers, body = _signed(signer)
    headers["X-Fal-Webhook-Signature"] = headers["X-Fal-Webhook-Signature"].upper()
    verify_webhook(headers, body, [bytes(signer.key.verify_key)], now=1_800_000_000)


def test_any_key_may_verify_and_none_means_bad_signature(signer):
    from nacl.signing import SigningKey

    other = bytes(SigningKey.generate().verify_key)
    headers, body = _signed(signer)
    verify_webhook(headers, body, [other, bytes(signer.key.verify_key)], now=1_800_000_000)
    assert _reason(headers, body, [other]) == "bad_signature"
    assert _reason(headers, body, []) == "bad_signature"


def test_reason_codes_leak_nothing(signer):
    headers, body = _signed(signer, body=b'{"secret": "hunter2"}')
    headers["X-Fal-Webhook-Signature"] = "00" * 64
    with pytest.raises(WebhookVerificationError) as info:
        verify_webhook(headers, body, [bytes(signer.key.verify_key)], now=1_800_000_000)
    assert str(info.value) == "bad_signature"


def test_parse_jwks_skips_other_key_types_and_restores_padding():
    rfc8037 = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    doc = {"keys": [
        {"kty": "RSA", "n": "abc", "e": "AQAB"},
        {"kty": "OKP", "crv": "X25519", "x": rfc8037},
        {"kty": "OKP", "crv": "Ed25519", "x": "short"},
        {"kty": "OKP", "crv": "Ed25519", "x": 42},
        "junk",
        {"kty": "OKP", "crv": "Ed25519", "x": rfc8037},
        {"x": rfc8037 + "="},  # bare `x` as in fal's docs, padding present
    ]}
    keys = parse_jwks(doc)
    assert len(keys) == 2 and all(len(k) == 32 for k in keys)
    assert keys[0].hex().startswith("d75a9801")


@pytest.mark.parametrize("doc", [None, [], {"keys": "x"}, {"nokeys": []}])
def test_parse_jwks_rejects_non_jwks(doc):
    from tools.webhooks import JwksError

    with pytest.raises(JwksError):
        parse_jwks(doc)
