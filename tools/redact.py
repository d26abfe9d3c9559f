"""The one secret redactor: every form a key can take in text, and every credential shape.

Both sides use it: the fal client scrubs its error messages with it (``tools.fal.mapping.scrub``)
and the application (``agent.redact``, which re-exports this module) runs every channel through
it: the screen, stdout/stderr, ``ask --json``, the transcript, exports, logs, exception messages
and the model request.

What is masked, for each literal secret (the FAL and OpenAI keys from the environment, from a
``.env`` read by the settings (they are remembered when validated, see :func:`remember_secrets`),
plus any a caller passes):

* the value, its stripped form, and the pieces between control characters or whitespace;
* each half of an ``id:secret`` pair that is at least :data:`MIN_PART_LEN` long;
* for each of those: the ``repr``/escaped form (``\\n`` as backslash-n, ``\\x..``, ``\\u....``),
  the JSON-escaped form, the URL-encoded forms (``quote``, ``quote_plus``, any hex case), and
  base64 (standard and URL-safe, padded or not) of the value alone or inside a longer text at
  any of the three byte offsets (the core of whole 4-character groups that such an encoding
  always holds).

Shapes, whoever's the key is: a credential after ``Authorization: Key``/``Bearer``, an
``id:secret`` after ``Key``, ``Bearer <token>``, and OpenAI-style ``sk-...`` keys. Values under
credential-named keys (``authorization``, ``api_key``, ...) are replaced whole.

Everything is pure (inputs are never mutated) and a redactor is cached per secret set.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

MASK = "[REDACTED]"
SECRET_ENV_VARS = ("FAL_KEY", "OPENAI_API_KEY")
MIN_SECRET_LEN = 4
"""Shorter literals are not masked: a key of "abc" is not worth destroying every "abc"."""
MIN_PART_LEN = 8
"""A half of an ``id:secret`` key, or a piece between control characters, is masked alone
from this length on (shorter ones are ordinary words too often)."""
_MIN_B64_CORE = 8
"""A base64 core shorter than this (under 6 bytes of secret) is too likely to occur by chance."""
_REMEMBERED_MAX = 8

SENSITIVE_KEYS = frozenset(
    {"authorization", "proxy_authorization", "api_key", "apikey", "fal_key", "openai_api_key",
     "x_fal_key", "password", "client_secret", "secret_key", "access_token", "refresh_token"}
)

_TOKEN = r"[A-Za-z0-9._~+/=\-]"
# Each shape keeps its named prefix ("Authorization: Key ") and masks only the credential.
_SHAPES = re.compile("|".join([
    # "Authorization: Key id:secret", "authorization=Bearer abc", "'Authorization': 'Key ...'"
    rf"(?P<p1>(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?i:key|bearer|basic|token)\s+)"
    rf"{_TOKEN}+(?::{_TOKEN}+)?",
    # "Key id:secret" anywhere (fal's scheme); the colon is required so prose "key ideas" survives.
    rf"(?P<p2>\b(?i:key)\s+){_TOKEN}{{3,}}:{_TOKEN}{{6,}}",
    # "Bearer <token>" anywhere
    rf"(?P<p3>\b(?i:bearer)\s+){_TOKEN}{{8,}}",
    # OpenAI-style keys: sk-..., sk-proj-...
    r"\bsk-[A-Za-z0-9_\-]{16,}",
]))
_PREFIX_GROUPS = ("p1", "p2", "p3")
# Every shape needs one of these words or "key" (any case), and every SENSITIVE_KEYS name holds
# one (with "-" for "_" too), so ASCII text without any of them (and without a secret's form)
# has nothing to redact. "key" counts only where a shape or a key name can use it (see
# `_key_hint`). Letters are never escaped in JSON, so this holds for a JSON encoding of the
# text as well. Matched against lower().
_HINT_WORDS = ("authorization", "bearer", "password", "secret", "access_token", "access-token",
               "refresh_token", "refresh-token", "sk-")
# What any of the shapes needs (any case), per string: the walk skips `_SHAPES` without one.
_SHAPE_WORDS = ("key", "bearer", "authorization", "sk-")
_SPLIT = re.compile(r"[\x00-\x20\x7f]+")
_PCT = re.compile(r"%[0-9A-F]{2}")

_remembered: list[str] = []
_remembered_lock = threading.Lock()


def _mask(match: re.Match[str]) -> str:
    """The replacement for one shape match: its kept prefix, if any, then the mask."""
    for group in _PREFIX_GROUPS:
        prefix = match.group(group)
        if prefix is not None:
            return prefix + MASK
    return MASK


def _key_hint(lower: str) -> bool:
    """Whether lower-cased text has a "key" a shape or a credential-named key could use: one
    before whitespace (`Key id:secret`; a JSON text writes \\n, \\t... with a backslash) or one
    after "_", "-" or "i" (api_key, x-fal-key, apikey). A dict key named "key", a "keyframe"
    or a "monkey" is none."""
    at = lower.find("key")
    while at >= 0:
        after = lower[at + 3:at + 4]
        if after.isspace() or after == "\\" or (at > 0 and lower[at - 1] in "_-i"):
            return True
        at = lower.find("key", at + 3)
    return False


def _alternation(literals: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern that matches wherever any of `literals` occurs (None for none)."""
    ordered = sorted(set(literals), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def secret_parts(value: str) -> list[str]:
    """The literals to mask for one secret: itself, stripped, its pieces, its halves."""
    out = [value] if len(value) >= MIN_SECRET_LEN else []
    stripped = value.strip()
    if stripped != value and len(stripped) >= MIN_SECRET_LEN:
        out.append(stripped)
    pieces = [p for p in _SPLIT.split(stripped) if p]
    if len(pieces) > 1:
        out += [p for p in pieces if len(p) >= MIN_PART_LEN]
    for piece in [stripped, *pieces]:
        if ":" in piece:
            head, _, tail = piece.partition(":")
            out += [h for h in (head, tail) if len(h) >= MIN_PART_LEN]
    return list(dict.fromkeys(out))


def _b64_cores(raw: bytes) -> list[str]:
    """The base64 text that any encoding of a text holding `raw` contains, for each of the
    three offsets `raw` can start at within a 3-byte group (standard alphabet)."""
    cores = []
    for skip in range(3):
        body = raw[skip:]
        body = body[: len(body) // 3 * 3]
        core = base64.b64encode(body).decode("ascii")
        if len(core) >= _MIN_B64_CORE:
            cores.append(core)
    return cores


def _escapes(value: str) -> list[str]:
    """`value` as the usual escapers write it: repr, ascii, unicode_escape, JSON (both ways)."""
    return [repr(value)[1:-1], ascii(value)[1:-1], value.encode("unicode_escape").decode("ascii"),
            json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]]


def secret_forms(value: str) -> list[str]:
    """Every text form of one literal (see the module docstring), longest first."""
    forms: set[str] = {value, *_escapes(value)}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")):
        forms.add(encoded)
        forms.add(_PCT.sub(lambda m: m.group(0).lower(), encoded))
    for core in _b64_cores(value.encode("utf-8", "surrogatepass")):
        forms.add(core)
        forms.add(core.translate(str.maketrans("+/", "-_")))
    # Escaped once more: a form quoted inside a JSON or repr'd text (an error message in JSON).
    for form in list(forms):
        forms.update(_escapes(form))
    return sorted((f for f in forms if len(f) >= MIN_SECRET_LEN), key=len, reverse=True)


def remember_secrets(*values: str | SecretStr | None) -> None:
    """Add secrets to every later redaction in this process (the last few are kept).

    The settings call this for each key they validate, so a key read from `.env` (which never
    reaches `os.environ`) is masked by every channel, not only by those given the settings."""
    with _remembered_lock:
        for value in values:
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if isinstance(raw, str) and len(raw) >= MIN_SECRET_LEN:
                if raw in _remembered:
                    _remembered.remove(raw)
                _remembered.append(raw)
        del _remembered[:-_REMEMBERED_MAX]


def forget_secrets() -> None:
    """Drop every remembered secret (for tests)."""
    with _remembered_lock:
        _remembered.clear()


def env_secrets() -> tuple[str, ...]:
    """The secret values currently set in the environment."""
    return tuple(v for v in (os.environ.get(n) for n in SECRET_ENV_VARS) if v)


def known_secrets() -> tuple[str, ...]:
    """The environment's secrets plus the remembered ones."""
    with _remembered_lock:
        remembered = tuple(_remembered)
    return env_secrets() + remembered


def settings_secrets(settings: Any) -> tuple[str, ...]:
    """The secret values held by a settings object (e.g. read from `.env`)."""
    out = []
    for field in ("fal_key", "openai_api_key", "key"):
        value = getattr(settings, field, None)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            out.append(value)
    return tuple(out)


class Redactor:
    """Masks every form of a fixed set of literal secrets and every known credential shape.

    Build one per secret set (`Redactor.for_secrets`) and call it on any str/dict/list/tuple;
    containers are copied, never modified in place.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals: set[str] = set()
        for s in secrets:
            if isinstance(s, str):
                literals.update(secret_parts(s))
        self.secrets = frozenset(literals)
        forms: set[str] = set()
        for literal in literals:
            forms.update(secret_forms(literal))
        # Longest first, so a whole key is masked before one of its halves could leave the rest.
        self.forms: tuple[str, ...] = tuple(sorted(forms, key=len, reverse=True))
        # What a JSON text (ensure_ascii off, as the transcript stores it) shows of each form;
        # one that holds another is left out: wherever it occurs, the one it holds does too.
        shown = {*forms, *(json.dumps(f, ensure_ascii=False)[1:-1] for f in forms)}
        self._json_forms = tuple(sorted(f for f in shown if not any(g != f and g in f for g in shown)))
        # A detector only (does any form occur?), compiled once per secret set; None without one.
        self._any_form = _alternation(self.forms)
        self.longest = max((len(f) for f in self.forms), default=0)

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
        if any(h in lower for h in _HINT_WORDS) or _key_hint(lower):
            return False
        return not any(f in text for f in self._json_forms)

    def text(self, value: str) -> str:
        """`value` with every form of every secret and every credential shape masked."""
        # One scan says whether any form is there at all (a match at or before the first one);
        # only then are they replaced one by one, longest first.
        if self._any_form is not None and self._any_form.search(value) is not None:
            for form in self.forms:
                if form in value:
                    value = value.replace(form, MASK)
        # ASCII text without a shape's word has no shape (for ASCII, the shapes' case-blind
        # matching is lower()'s); anything else is left to the regex.
        if value.isascii():
            lower = value.lower()
            if not any(w in lower for w in _SHAPE_WORDS):
                return value
        return _SHAPES.sub(_mask, value)

    def __call__(self, value: Any) -> Any:
        """Redact strings (dict keys too) inside any nesting of dicts, lists and tuples."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self._value_for(k, v) for k, v in value.items()}
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


def current() -> Redactor:
    """The redactor for the environment's and the remembered secrets."""
    return Redactor.for_secrets(known_secrets())


def redact(value: Any, extra: Iterable[str] = ()) -> Any:
    """Redact `value` against the environment's and remembered secrets plus `extra` ones."""
    return _redactor(extra)(value)


def redact_text(value: str, extra: Iterable[str] = ()) -> str:
    """Redact one string (an exception message, a log line, a line of output)."""
    return _redactor(extra).text(value)


def _redactor(extra: Iterable[str]) -> Redactor:
    secrets = known_secrets()
    if extra:
        secrets = secrets + tuple(extra)
    return Redactor.for_secrets(secrets)


class StreamRedactor:
    """Redacts text that arrives in pieces (streamed tokens) without showing a key split
    across two pieces: text is released up to its last whitespace (no form of a valid key
    holds one), redacted together with what came just before it in the same stream (so a
    shape such as `Key id:secret` is seen whole). Each release costs the piece plus a bounded
    window of earlier text, never the whole stream."""

    WINDOW = 256

    def __init__(self, redactor: Redactor | None = None) -> None:
        self._redactor = redactor
        self._raw = ""
        self._released = 0
        self._shown = ""

    def _red(self) -> Redactor:
        return self._redactor if self._redactor is not None else current()

    def feed(self, piece: str) -> str:
        """The part of the stream that can be shown now (may be empty)."""
        start = len(self._raw)
        self._raw += piece
        cut = max(piece.rfind(c) for c in " \n\t\r")
        if cut < 0:
            return ""
        return self._release(start + cut + 1)

    def flush(self) -> str:
        """Everything still held back, redacted; the stream starts afresh after it."""
        out = self._release(len(self._raw))
        self._raw, self._released, self._shown = "", 0, ""
        return out

    def _release(self, upto: int) -> str:
        red = self._red()
        text = self._raw[:upto]
        # Text with no secret's form and no credential word redacts to itself: skip the work.
        shown = text if text.isascii() and red.clean_json(text) else red.text(text)
        if shown.startswith(self._shown):
            new = shown[len(self._shown):]
        else:  # a later piece changed how earlier text redacts: show the rest from the change on
            common = next((i for i, (a, b) in enumerate(zip(shown, self._shown)) if a != b),
                          min(len(shown), len(self._shown)))
            new = shown[common:]
        self._released, self._shown = upto, shown
        window = max(self.WINDOW, 2 * red.longest)
        if upto > window + 64:  # forget released text far behind, from a whitespace on
            drop = next((i + 1 for i in range(upto - window, upto) if self._raw[i] in " \n\t\r"), 0)
            if drop:
                self._raw = self._raw[drop:]
                self._released = upto - drop
                self._shown = red.text(self._raw[:self._released])
        return new


__all__ = ["MASK", "MIN_PART_LEN", "MIN_SECRET_LEN", "Redactor", "SECRET_ENV_VARS", "SENSITIVE_KEYS",
           "StreamRedactor", "current", "env_secrets", "forget_secrets", "known_secrets", "redact",
           "redact_text", "remember_secrets", "secret_forms", "secret_parts", "settings_secrets"]
