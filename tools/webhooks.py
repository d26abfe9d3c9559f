"""Verify fal.ai webhooks: Ed25519 signatures over (request id, user id, timestamp, body hash).

The scheme (shared/fal-api.md §4.4): the sender signs the UTF-8 bytes of
``request_id + "\\n" + user_id + "\\n" + timestamp + "\\n" + sha256hex(raw_body)`` and sends the
lowercase hex signature in ``X-Fal-Webhook-Signature``. Any key of the published JWKS may have
signed it. A verifier must hash the raw bytes it received, never a re-serialised body, and
must reject timestamps more than 300 s from its own clock, which bounds how long a captured
delivery can be replayed (the listener's inbox deduplicates within that window).

Failures raise :class:`WebhookVerificationError` whose ``reason`` is a short code safe to
send back to the caller: it says which rule failed and nothing about the keys or the message.
Nothing here imports ``agent``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from tools.errors import AppError
from tools.fal.errors import FalError

__all__ = [
    "HEADER_REQUEST_ID", "HEADER_USER_ID", "HEADER_TIMESTAMP", "HEADER_SIGNATURE", "REQUIRED_HEADERS",
    "MAX_CACHE_TTL_S", "REASONS", "WebhookVerificationError", "JwksError", "KeysMayHaveRotated", "KeyLike",
    "signed_headers_from_raw", "require_all", "signed_message", "verify_webhook", "verify_signed_headers", "read_jwks",
    "jwks_document", "parse_jwks", "JwksCache"
]


HEADER_REQUEST_ID = "x-fal-webhook-request-id"
HEADER_USER_ID = "x-fal-webhook-user-id"
HEADER_TIMESTAMP = "x-fal-webhook-timestamp"
HEADER_SIGNATURE = "x-fal-webhook-signature"
REQUIRED_HEADERS = (HEADER_REQUEST_ID, HEADER_USER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)

MAX_CACHE_TTL_S = 86_400.0  # fal's docs: never cache the keys longer than 24 h
_MAX_TIMESTAMP_DIGITS = 12  # epoch seconds need 10; more is junk, and int() on huge input is slow

REASONS = (
    "missing_header",
    "duplicate_header",
    "bad_timestamp",
    "timestamp_out_of_range",
    "bad_signature_encoding",
    "bad_signature",
)


class WebhookVerificationError(AppError):
    """A webhook failed verification; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JwksError(FalError):
    """The JWKS could not be fetched or held no usable key (the listener answers 503; the
    `get_webhook_jwks` tool reports it like any fal failure)."""

    hint = "Check FAL_JWKS_URL, or try again in a minute."


class KeysMayHaveRotated(JwksError):
    """No cached key accepts a signature made after the keys were fetched, and the JWKS may
    not be fetched again yet: the signer's key may be new. ``retry_after_s`` says when a
    refetch is allowed (the listener answers 503 with Retry-After; fal retries)."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("signing keys may have rotated; retry")
        self.retry_after_s = retry_after_s


KeyLike = bytes | VerifyKey


def _collect(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The four webhook headers from (lowercase name, value) pairs."""
    found: dict[str, str] = {}
    for low, value in pairs:
        if low in REQUIRED_HEADERS:
            # Two copies of a signed header would let the verifier and the handler read
            # different values; refuse rather than pick one.
            if low in found:
                raise WebhookVerificationError("duplicate_header")
            found[low] = value
    return found


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The four webhook headers keyed in lowercase (HTTP header names are case-insensitive)."""
    return _collect((name.lower(), value) for name, value in headers.items())


def signed_headers_from_raw(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The four webhook headers from ASGI-style raw (name, value) byte pairs (latin-1, as HTTP)."""
    # A plain loop, not _collect: this runs once per delivery on the listener's hot path.
    found: dict[str, str] = {}
    for name, value in raw:
        if len(name) < 21 or name[:14].lower() != b"x-fal-webhook-":
            continue
        low = name.lower().decode("latin-1")
        if low in REQUIRED_HEADERS:
            if low in found:
                raise WebhookVerificationError("duplicate_header")
            found[low] = value.decode("latin-1")
    return found


def require_all(found: Mapping[str, str]) -> None:
    """Raise WebhookVerificationError("missing_header") unless all four headers are there and non-empty."""
    if any(not found.get(name) for name in REQUIRED_HEADERS):
        raise WebhookVerificationError("missing_header")


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """The exact bytes fal signs for a delivery."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


def _as_verify_key(key: KeyLike) -> VerifyKey:
    """A PyNaCl VerifyKey from 32 raw bytes (or one already built)."""
    return key if isinstance(key, VerifyKey) else VerifyKey(bytes(key))


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    keys: Sequence[KeyLike],
    *,
    now: float,
    tolerance_s: float = 300,
) -> None:
    """Check one delivery; return None when valid, raise WebhookVerificationError otherwise."""
    verify_signed_headers(_lower_headers(headers), body, keys, now=now, tolerance_s=tolerance_s)


def verify_signed_headers(
    found: Mapping[str, str],
    body: bytes,
    keys: Sequence[KeyLike],
    *,
    now: float,
    tolerance_s: float = 300,
) -> None:
    """Like verify_webhook, for headers already collected (lowercase names, see signed_headers_from_raw)."""
    require_all(found)
    timestamp = found[HEADER_TIMESTAMP]
    # Only plain ASCII digits: int() would also take "+1", " 1", "1_0" and non-ASCII digits,
    # and the signed text must be the header exactly as sent.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        raise WebhookVerificationError("bad_timestamp")
    if abs(now - int(timestamp)) > tolerance_s:
        raise WebhookVerificationError("timestamp_out_of_range")
    signature_hex = found[HEADER_SIGNATURE]
    if len(signature_hex) != 128:
        raise WebhookVerificationError("bad_signature_encoding")
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError:
        raise WebhookVerificationError("bad_signature_encoding") from None
    message = signed_message(found[HEADER_REQUEST_ID], found[HEADER_USER_ID], timestamp, body)
    for key in keys:
        try:
            _as_verify_key(key).verify(message, signature)
        except (BadSignatureError, ValueError, TypeError):
            continue
        return None
    raise WebhookVerificationError("bad_signature")


def _b64url_decode(text: str) -> bytes:
    """Decode base64url, restoring the padding JWKs leave out."""
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


async def read_jwks(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The JWKS document at `url`, fetched without auth (it is public), for the listener's
    cache. JwksError when it cannot be reached or `jwks_document` refuses the answer."""
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise JwksError(f"could not reach the JWKS ({type(exc).__name__})") from exc
    return jwks_document(response)


def jwks_document(response: httpx.Response) -> dict[str, Any]:
    """A JWKS answer's document: JwksError unless a 200 with a JSON object holding `keys`."""
    if response.status_code != 200:
        raise JwksError(f"the JWKS answered HTTP {response.status_code}", status=response.status_code)
    try:
        document = response.json()
    except ValueError as exc:
        raise JwksError("the JWKS is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("the JWKS is not an object with a 'keys' list")
    return document


def parse_jwks(document: Any) -> list[bytes]:
    """The raw 32-byte Ed25519 keys in a JWKS document; keys of other types are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("the JWKS is not an object with a 'keys' list")
    keys: list[bytes] = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        # fal's docs read only `x`; when kty/crv are present they must say Ed25519.
        if jwk.get("kty", "OKP") != "OKP" or jwk.get("crv", "Ed25519") != "Ed25519":
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = _b64url_decode(x)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            continue
        if len(raw) == 32:
            keys.append(raw)
    return keys


class JwksCache:
    """fal's webhook-signing keys, fetched from ``url`` and cached.

    - Cached for ``ttl_s`` seconds (at most 24 h, as fal's docs require).
    - When a signature fails to verify, the keys may have rotated: the cache refetches once
      and retries, but no more than once every ``min_refetch_s`` seconds, so a flood of
      forged webhooks cannot turn the listener into a JWKS hammer. A miss it may not refetch
      for, on a signature made after its keys were fetched, raises KeysMayHaveRotated (the
      listener answers 503 with Retry-After) rather than calling it a forgery.
    - Concurrent callers share one fetch (an asyncio lock plus a fetch generation counter).
    - ``client`` is an optional ``httpx.AsyncClient``; without one the cache makes and owns
      its own, lazily. No auth is sent: the JWKS is public.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        ttl_s: float = MAX_CACHE_TTL_S,
        min_refetch_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = 10.0,
    ) -> None:
        if not 0 < ttl_s <= MAX_CACHE_TTL_S:
            raise ValueError("ttl_s must be in (0, 86400]")
        self.url = url
        self.ttl_s = ttl_s
        self.min_refetch_s = min_refetch_s
        self._clock = clock
        self._timeout_s = timeout_s
        self._client = client
        self._owns_client = client is None
        self._keys: list[VerifyKey] = []
        self._fetched_at: float | None = None
        self._keys_as_of: float | None = None  # when the fetch that got the keys began
        self._last_attempt: float | None = None
        self._last_failure: float | None = None
        self._generation = 0
        self._lock: asyncio.Lock | None = None
        self.fetch_count = 0

    async def aclose(self) -> None:
        """Close the HTTP client if this cache made it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def cached_keys(self) -> list[VerifyKey] | None:
        """The keys if fetched and within the TTL, else None (then await :meth:`keys`); no I/O."""
        return self._keys if self._fresh() else None

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self.ttl_s

    async def keys(self) -> list[VerifyKey]:
        """The current keys, fetched when absent or older than the TTL."""
        if self._fresh():
            return self._keys
        await self._refresh(self._generation, force=True)
        return self._keys

    async def _refresh(self, seen_generation: int, *, force: bool) -> bool:
        """Fetch unless someone fetched since `seen_generation`; True if the keys changed hands."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._generation != seen_generation:
                return True  # another caller fetched while we waited: use theirs
            if not force and self._fresh_attempt():
                return False
            if force and self._failed_recently():
                raise JwksError("the JWKS fetch failed moments ago; not retrying yet")
            started = self._last_attempt = self._clock()
            try:
                self._keys = [VerifyKey(k) for k in await self._fetch()]
            except JwksError:
                self._last_failure = self._clock()
                if not self._fresh():
                    raise
                return False  # keep the keys we have; they are still within the TTL
            self._last_failure = None
            self._keys_as_of = started
            self._fetched_at = self._clock()
            self._generation += 1
            return True

    def _failed_recently(self) -> bool:
        """True if the last fetch failed within the failure back-off (a few seconds)."""
        backoff = min(self.min_refetch_s, 5.0)
        return self._last_failure is not None and self._clock() - self._last_failure < backoff

    def _fresh_attempt(self) -> bool:
        """True if a fetch was tried less than `min_refetch_s` ago."""
        return self._last_attempt is not None and self._clock() - self._last_attempt < self.min_refetch_s

    async def _fetch(self) -> list[bytes]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        self.fetch_count += 1
        keys = parse_jwks(await read_jwks(self._client, self.url))
        if not keys:
            raise JwksError("the JWKS holds no Ed25519 key")
        return keys

    async def verify(
        self, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> None:
        """Verify with the cached keys; on a bad signature refetch once (rate-limited) and retry.

        Raises WebhookVerificationError, JwksError when there are no keys, and
        KeysMayHaveRotated when no key accepts a signature newer than the keys and the
        refetch is not allowed yet (or failed).
        """
        when = time.time() if now is None else now
        keys = await self.keys()
        generation = self._generation
        try:
            verify_webhook(headers, body, keys, now=when)
            return
        except WebhookVerificationError as exc:
            # Only a signature no key accepts can mean rotation; malformed input cannot.
            if exc.reason != "bad_signature":
                raise
            first = exc
        if await self._refresh(generation, force=False):
            verify_webhook(headers, body, self._keys, now=when)  # keys this fresh: a miss is a forgery
            return
        if self._signed_after_fetch(headers, when):
            raise KeysMayHaveRotated(self._refetch_in_s())
        raise first

    def _signed_after_fetch(self, headers: Mapping[str, str], now: float) -> bool:
        """True if the delivery's timestamp is later than the fetch that got the cached keys.

        Both sides are ages, so the cache's clock and the wall clock never mix. A key fal
        signs with is published before it is used, so keys fetched after the signature was
        made would hold it (the timestamp has whole seconds: a key first used within the
        second before our fetch gets 401, which fal retries).
        """
        if self._keys_as_of is None:
            return False
        timestamp = _lower_headers(headers).get(HEADER_TIMESTAMP, "")
        if not timestamp.isdigit():
            return False
        return self._clock() - self._keys_as_of > now - int(timestamp)

    def _refetch_in_s(self) -> int:
        """Whole seconds until a refetch is allowed again (at least 1)."""
        if self._last_attempt is None:
            return 1
        left = self._last_attempt + self.min_refetch_s - self._clock()
        return max(1, min(int(self.min_refetch_s) or 1, math.ceil(left)))
