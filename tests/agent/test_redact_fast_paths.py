"""The redactor's shortcuts give the answers of the full work: `clean_json` is never True for
something to redact, and `Redactor.text` equals the plain replace-every-form-then-every-shape."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tools.redact import _SHAPES, MASK, Redactor, _mask

KEY = "0f3b9c1e-5a7d-4e21-9b8c-2d4f6a8b0c1e:7c1d9e2f4a6b8c0d1e3f5a7b9c2d4e6f"
SECRET = KEY.split(":")[1]


def reference_text(red: Redactor, value: str) -> str:
    """What `Redactor.text` did before its shortcuts: every form, longest first, then shapes."""
    for form in red.forms:
        if form in value:
            value = value.replace(form, MASK)
    return _SHAPES.sub(_mask, value)


# Fragments that make the shortcuts' edge cases likely: key words in every case and position,
# whitespace of each kind, a secret and its pieces, non-ASCII letters that fold to ASCII ones.
FRAGMENTS = st.sampled_from([
    "key", "Key ", "KEY\t", "key\n", "monkey", "keyframe", "_key", "-key", "apikey", "api-KEY",
    "x-fal-key", "bearer ", "Bearer\x0b", "authorization: ", "Authorization=", "sk-", "sk-proj-",
    "token", "access_token", "refresh-token", "password", "secret", ":", "abc", "0123456789abcdef",
    KEY, SECRET, KEY[:20], SECRET[10:], "\u0131", "\u212a", "\u017f", "é", " ", "\n", "\\", '"',
    "\x1c", "\u00a0",
])
TEXTS = st.lists(st.one_of(FRAGMENTS, st.text(max_size=6)), max_size=10).map("".join)
VALUES = st.recursive(
    st.one_of(TEXTS, st.integers(), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(FRAGMENTS, TEXTS), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_text_equals_the_plain_replace_then_shapes(value):
    for red in (Redactor([KEY]), Redactor([])):
        assert red.text(value) == reference_text(red, value)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_clean_json_true_means_nothing_to_redact(value):
    for red in (Redactor([KEY]), Redactor([])):
        if red.clean_json(json.dumps(value, ensure_ascii=False)):
            assert red(value) == value


def test_a_key_named_key_is_not_a_hint():
    red = Redactor([KEY])
    for data in ({"group": {"key": "fal-ai/flux", "label": "FLUX.1"}},
                 {"t": "keyframes of a monkey"}, {"KEY": 1}, {"t": "hotkeys"}):
        assert red.clean_json(json.dumps(data, ensure_ascii=False)), data


def test_every_key_a_shape_or_a_name_can_use_is_a_hint():
    red = Redactor([])
    for data in ({"t": "Key abc:defghijk"}, {"t": "key\nabc:defghijk"}, {"t": "key\x1cabc:defghijk"},
                 {"api_key": "x"}, {"apikey": "x"}, {"API-KEY": "x"}, {"x-fal-key": "x"},
                 {"secret_key": "x"}):
        text = json.dumps(data, ensure_ascii=False)
        assert not red.clean_json(text), data
    assert red({"t": "key\nabc:defghijk"}) == {"t": f"key\n{MASK}"}
    assert red({"x-fal-key": "x"}) == {"x-fal-key": MASK}


def test_a_form_left_out_of_the_json_check_is_found_through_the_one_it_holds():
    red = Redactor([KEY])
    for form in red.forms:
        assert not red.clean_json(json.dumps({"t": f"a {form} b"}, ensure_ascii=False)), form
