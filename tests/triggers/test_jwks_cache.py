"""JwksCache: TTL, refetch on a failed verification (rate-limited), one shared fetch."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.triggers.support import FakeClock, JwksServer, Signer
from tools.webhooks import JwksCache, JwksError, KeysMayHaveRotated, WebhookVerificationError

NOW = 1_800_000_000


async def test_keys_are_cached_until_the_ttl(signer, jwks_server):
    clock = FakeClock(0)
    cache = jwks_server.cache(ttl_s=3600, clock=clock)
    await cache.keys()
    await cache.keys()
    assert jwks_server.fetches == 1
    clock.advance(3599)
    await cache.keys()
    assert jwks_server.fetches == 1
    clock.advance(2)
    await cache.keys()
    assert jwks_server.fetches == 2


def test_ttl_above_24h_is_refused():
    with pytest.raises(ValueError):
        JwksCache("https://x.test/jwks", ttl_s=86_401)


async def test_rotation_new_key_accepted_after_one_rate_limited_refetch(signer, jwks_server):
    clock = FakeClock(0)
    cache = jwks_server.cache(clock=clock, min_refetch_s=60)
    await cache.keys()
    new = Signer()
    jwks_server.keys = [new.jwk]  # fal rotated: the old key is gone, the new one published
    body = b'{"x": 1}'
    clock.advance(61)
    await cache.verify(new.headers(body, "r1", timestamp=NOW), body, now=NOW)
    assert jwks_server.fetches == 2
    # A forged signature right after: no refetch inside the minute.
    forged = Signer()
    with pytest.raises(WebhookVerificationError, match="bad_signature"):
        await cache.verify(forged.headers(body, "r2", timestamp=NOW), body, now=NOW)
    assert jwks_server.fetches == 2
    for _ in range(20):
        with pytest.raises(WebhookVerificationError):
            await cache.verify(forged.headers(body, "r3", timestamp=NOW), body, now=NOW)
    assert jwks_server.fetches == 2
    clock.advance(60)
    with pytest.raises(WebhookVerificationError):
        await cache.verify(forged.headers(body, "r4", timestamp=NOW), body, now=NOW)
    assert jwks_server.fetches == 3


async def test_a_rotated_key_inside_the_refetch_window_is_may_have_rotated_not_forged(signer, jwks_server):
    """Issue 12 finding 9: a key fal started using after our fetch got 401 for up to a minute."""
    clock = FakeClock(0)
    cache = jwks_server.cache(clock=clock, min_refetch_s=60)
    await cache.keys()
    new = Signer()
    jwks_server.keys = [signer.jwk, new.jwk]  # fal publishes a new key and starts signing with it
    clock.advance(20)
    body = b'{"x": 1}'
    headers = new.headers(body, "r1", timestamp=NOW)
    with pytest.raises(KeysMayHaveRotated) as info:
        await cache.verify(headers, body, now=NOW)
    assert info.value.retry_after_s == 40  # the refetch is allowed 60 s after the last one
    assert jwks_server.fetches == 1  # still rate-limited
    clock.advance(40)
    await cache.verify(headers, body, now=NOW)  # fal's retry: refetched, and the new key verifies
    assert jwks_server.fetches == 2


async def test_a_miss_older_than_the_keys_is_a_forgery_even_when_rate_limited(signer, jwks_server):
    clock = FakeClock(0)
    cache = jwks_server.cache(clock=clock, min_refetch_s=60)
    await cache.keys()
    clock.advance(20)
    body = b"{}"
    forged = Signer().headers(body, "r1", timestamp=NOW - 30)  # signed before our fetch: its key would be there
    with pytest.raises(WebhookVerificationError, match="bad_signature"):
        await cache.verify(forged, body, now=NOW)
    assert jwks_server.fetches == 1


async def test_malformed_requests_never_trigger_a_refetch(signer, jwks_server):
    clock = FakeClock(0)
    cache = jwks_server.cache(clock=clock)
    body = b"{}"
    headers = signer.headers(body, "r", timestamp=NOW)
    await cache.verify(headers, body, now=NOW)
    clock.advance(3600)
    for bad in ({**headers, "X-Fal-Webhook-Signature": "zz"}, {**headers, "X-Fal-Webhook-Timestamp": "1"}):
        with pytest.raises(WebhookVerificationError):
            await cache.verify(bad, body, now=NOW)
    assert jwks_server.fetches == 1


async def test_concurrent_callers_share_one_fetch(signer):
    gate = asyncio.Event()
    server = JwksServer(signer)

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return server.handler(request)

    cache = JwksCache("https://jwks.test/k", client=httpx.AsyncClient(transport=httpx.MockTransport(slow)))
    tasks = [asyncio.create_task(cache.keys()) for _ in range(25)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert server.fetches == 1
    assert all(len(r) == 1 for r in results)


async def test_unreachable_jwks_is_a_typed_error_and_old_keys_survive_a_failed_refetch(signer, jwks_server):
    clock = FakeClock(0)
    cache = jwks_server.cache(clock=clock)
    jwks_server.fail = True
    with pytest.raises(JwksError):
        await cache.keys()
    jwks_server.fail = False
    clock.advance(10)  # past the short failure back-off
    await cache.keys()
    jwks_server.fail = True
    clock.advance(120)
    other = Signer()
    body = b"{}"
    # Signed after our keys were fetched and the refetch failed: maybe a new key, not a forgery.
    with pytest.raises(KeysMayHaveRotated):
        await cache.verify(other.headers(body, "r", timestamp=NOW), body, now=NOW)
    # The keys we had still verify while within the TTL.
    await cache.verify(signer.headers(body, "r", timestamp=NOW), body, now=NOW)


async def test_jwks_with_no_ed25519_key_is_an_error():
    def handler(request):
        return httpx.Response(200, json={"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}]})

    cache = JwksCache("https://jwks.test/k", client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    with pytest.raises(JwksError, match="no Ed25519"):
        await cache.keys()


async def test_fetch_sends_no_credentials(signer, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "kid:very-secret")
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"keys": [signer.jwk]})

    cache = JwksCache("https://jwks.test/k", client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    await cache.keys()
    assert "authorization" not in {k.lower() for k in seen[0].headers}
