"""Secret redaction, applied before anything is written (transcript, logs) or shown.

Two layers, because neither alone is enough:

* literal values: the current `FAL_KEY` and `OPENAI_API_KEY` (from the environment, plus any
  secrets a caller passes, e.g. from a `.env` read by `Settings`), and the secret half of an
  `id:secret` FAL key on its own;
* shapes: a credential after `Authorization: Key` / `Bearer`, an `id:secret` after `Key`, and
  OpenAI-style `sk-...` keys, whoever's they are.

Values under credential-named keys (`authorization`, `api_key`, ...) are replaced whole.
Everything is pure: inputs are never mutated, and the compiled pattern is cached per secret set.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pydantic import SecretStr

MASK = "[REDACTED]"
SECRET_ENV_VARS = ("FAL_KEY", "OPENAI_API_KEY")
# Shorter literals would mangle ordinary text (a key of "abc" is not worth destroying every "abc").
MIN_SECRET_LEN = 4

SENSITIVE_KEYS = frozenset(
    {"authorization", "proxy_authorization", "api_key", "apikey", "fal_key", "openai_api_key",
     "x_fal_key", "password", "client_secret", "secret_key", "access_token", "refresh_token"}
)

_TOKEN = r"[A-Za-z0-9._~+/=\-]"
# Each shape keeps its named prefix ("Authorization: Key ") and masks only the credential.
_SHAPES = [
    # "Authorization: Key id:secret", "authorization=Bearer abc", "'Authorization': 'Key ...'"
    rf"(?P<p1>(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:key|bearer|basic|token)\s+)"
    rf"{_TOKEN}+(?::{_TOKEN}+)?",
    # "Key id:secret" anywhere (fal's scheme); the colon is required so prose "key ideas" survives.
    rf"(?P<p2>\b(?i:key)\s+){_TOKEN}{{3,}}:{_TOKEN}{{6,}}",
    # "Bearer <token>" anywhere
    rf"(?P<p3>\b(?i:bearer)\s+){_TOKEN}{{8,}}",
    # OpenAI-style keys: sk-..., sk-proj-...
    r"\bsk-[A-Za-z0-9_\-]{16,}",
]
_PREFIX_GROUPS = ("p1", "p2", "p3")
# Every shape needs one of these words (any case) or `sk-`, and every SENSITIVE_KEYS name holds
# one, so ASCII text without any of them (and without a literal secret) has nothing to redact.
# Letters are never escaped in JSON, so this holds for a JSON encoding of the text as well.
_HINTS = ("authorization", "key", "bearer", "password", "secret", "access_token", "access-token",
          "refresh_token", "refresh-token", "sk-")


def _mask(match: re.Match[str]) -> str:
    """The replacement for one match: its kept prefix, if any, then the mask."""
    for group in _PREFIX_GROUPS:
        prefix = match.group(group)
        if prefix is not None:
            return prefix + MASK
    return MASK


def _secret_variants(value: str) -> list[str]:
    """A secret plus its secret half when it is an `id:secret` pair."""
    out = [value]
    if ":" in value:
        tail = value.split(":", 1)[1]
        if len(tail) >= 6:
            out.append(tail)
    return out


def env_secrets() -> tuple[str, ...]:
    """The secret values currently set in the environment."""
    return tuple(v for v in (os.environ.get(n) for n in SECRET_ENV_VARS) if v)


def settings_secrets(settings: Any) -> tuple[str, ...]:
    """The secret values held by a `Settings` object (e.g. read from `.env`)."""
    out = []
    for field in ("fal_key", "openai_api_key"):
        value = getattr(settings, field, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            out.append(value)
    return tuple(out)


class Redactor:
    """Masks a fixed set of literal secrets and every known credential shape.

    Build one per secret set (`Redactor.for_secrets`) and call it on any str/dict/list/tuple;
    containers are copied, never modified in place.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals: set[str] = set()
        for s in secrets:
            if isinstance(s, str) and len(s) >= MIN_SECRET_LEN:
                literals.update(v for v in _secret_variants(s) if len(v) >= MIN_SECRET_LEN)
        # Longest first, so a full key is masked before its tail could leave the id behind.
        alternatives = [re.escape(s) for s in sorted(literals, key=len, reverse=True)] + _SHAPES
        self._pattern = re.compile("|".join(alternatives))
        self.secrets = frozenset(literals)
        # JSON escapes quotes, backslashes and control characters, so a literal holding one
        # appears in a JSON text only in its escaped form: look for both.
        self._escaped = tuple(literals | {json.dumps(s, ensure_ascii=False)[1:-1] for s in literals})

    @classmethod
    def for_secrets(cls, secrets: Iterable[str]) -> Redactor:
        """A cached redactor for this set of secrets."""
        return _cached(tuple(sorted({s for s in secrets if isinstance(s, str) and s})))

    def clean_json(self, text: str) -> bool:
        """True when JSON `text` certainly holds nothing to redact (a cheap pre-check).

        Sound for `json.dumps(value, ensure_ascii=False)` of plain dicts/lists/strings/numbers:
        if this returns True, `self(value)` equals `value`. False only means "walk it".
        """
        # Outside ASCII, case-insensitive regex matching and str.lower() disagree (a dotless
        # ı is an i to the regex, not to lower()): leave such text to the full walk.
        if not text.isascii():
            return False
        lower = text.lower()
        return not any(h in lower for h in _HINTS) and not any(s in text for s in self._escaped)

    def text(self, value: str) -> str:
        """`value` with every secret and credential shape masked."""
        return self._pattern.sub(_mask, value)

    def __call__(self, value: Any) -> Any:
        """Redact strings inside any nesting of dicts, lists and tuples."""
        if isinstance(value, str):
            return self._pattern.sub(_mask, value)
        if isinstance(value, dict):
            return {k: self._value_for(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self(v) for v in value)
        if isinstance(value, SecretStr):
            return MASK
        return value

    def _value_for(self, key: Any, value: Any) -> Any:
        """A dict entry's redacted value; credential-named keys lose their value entirely."""
        if (
            isinstance(key, str)
            and isinstance(value, str | SecretStr)
            and value
            and key.lower().replace("-", "_") in SENSITIVE_KEYS
        ):
            return MASK
        return self(value)


@lru_cache(maxsize=32)
def _cached(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact(value: Any, extra: Iterable[str] = ()) -> Any:
    """Redact `value` against the environment's secrets plus `extra` ones."""
    secrets = env_secrets()
    if extra:
        secrets = secrets + tuple(extra)
    return Redactor.for_secrets(secrets)(value)


def redact_text(value: str, extra: Iterable[str] = ()) -> str:
    """Redact one string (an exception message, a log line)."""
    return redact(value, extra)
