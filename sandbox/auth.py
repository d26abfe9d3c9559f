"""Who is calling: fal's `Authorization: Key <id>:<secret>` rules, emulated.

Decisions (documented because fal does not publish them):
- any well-formed `Key id:secret` is accepted; the secret is never checked or stored;
- `Bearer <token>` (fal_client's login fallback) is accepted as a user too;
- no header at all is accepted on the queue (fal serves public models keylessly) and on
  `GET /v1/models`, and refused on `/v1/models/pricing*`, where fal requires a key;
- a malformed header is refused everywhere with 401 and fal's message, even where a key is optional;
- key ids listed in `SandboxConfig.locked_key_ids` answer 403 `User is locked. Reason: ...`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sandbox.config import SandboxConfig

MALFORMED = "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."
ANONYMOUS = "anonymous"


class AuthError(Exception):
    """A refused caller: HTTP status plus fal's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Caller:
    """The authenticated caller; `key_id` is None without a key."""

    key_id: str | None

    @property
    def queue_key(self) -> str:
        """The bucket used for queue ordering and concurrency."""
        return self.key_id or ANONYMOUS


def authenticate(header: str | None, config: SandboxConfig) -> Caller:
    """Parse the Authorization header; raise AuthError when fal would refuse it."""
    if header is None or not header.strip():
        return Caller(None)
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        # Tokens have no key id; a digest keeps callers apart without storing the token.
        return Caller("token-" + hashlib.sha256(value.encode()).hexdigest()[:12])
    if scheme.lower() != "key":
        raise AuthError(401, MALFORMED)
    key_id, sep, secret = value.partition(":")
    if not sep or not key_id or not secret or ":" in secret or " " in value:
        raise AuthError(401, MALFORMED)
    if key_id in config.locked_key_ids:
        raise AuthError(403, f"User is locked. Reason: {config.lock_reason}")
    return Caller(key_id)
