"""The one redactor (tools.redact, re-exported by agent.redact): every form of a key, in every
channel's shape of text, and streamed text split anywhere."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agent.redact as agent_redact
import tools.redact as tools_redact
from tools.fal.mapping import scrub
from tools.redact import MASK, Redactor, StreamRedactor

KEY = "fal-KEYID0042abc:SECRETpart0042xyz987"
ID, SECRET = KEY.split(":")


def test_there_is_one_redactor():
    assert agent_redact.Redactor is tools_redact.Redactor and agent_redact.redact is tools_redact.redact
    # The fal client's scrub is the same redactor: no second minimum length or form list.
    assert scrub(f"x {SECRET} y", [KEY]) == Redactor([KEY]).text(f"x {SECRET} y") == f"x {MASK} y"


ENCODED = {
    "raw": KEY, "repr": repr(KEY + "\n"), "escaped newline": json.dumps(KEY + "\n"),
    "unicode escape": (KEY + "\x0b").encode("unicode_escape").decode(), "ascii": ascii(KEY + "é"),
    "json in json": json.dumps(json.dumps({"k": KEY})), "quote": quote(KEY, safe=""), "quote default": quote(KEY),
    "quote lower hex": quote(KEY, safe="").replace("%3A", "%3a"), "quote_plus": quote_plus(KEY),
    "header": f"Illegal header value b'Key {KEY}\\n'", "id half": f"id {ID} only", "secret half": f"({SECRET})",
}


@pytest.mark.parametrize("name", list(ENCODED))
def test_every_text_form_is_masked(name):
    out = Redactor([KEY]).text(ENCODED[name])
    assert ID not in out and SECRET not in out and MASK in out
    for piece in (quote(ID, safe=""), quote(SECRET, safe="")):
        assert piece not in out


@pytest.mark.parametrize("urlsafe", [False, True])
@pytest.mark.parametrize("padding", [True, False])
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_base64_of_text_holding_the_key_at_any_offset(offset, padding, urlsafe):
    blob = ("x" * offset + f"Authorization: Key {KEY} end").encode()
    enc = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(blob).decode()
    enc = enc if padding else enc.rstrip("=")
    out = Redactor([KEY]).text(f"header={enc};")
    start = offset + len("Authorization: Key ")
    core = enc[-(-start // 3) * 4:(start + len(KEY)) // 3 * 4]  # groups of key bytes only
    assert len(core) >= 20 and core not in out and MASK in out


def test_key_with_surrounding_whitespace_in_the_environment(monkeypatch):
    monkeypatch.setenv("FAL_KEY", KEY + "\r\n")
    assert tools_redact.redact_text(f"k={KEY}.") == f"k={MASK}."
    assert KEY not in tools_redact.redact_text(repr(KEY + "\r\n"))


def test_pieces_around_an_inner_control_character_are_masked():
    bad = "fal-KEYID0042abc:SECRET\npart0042xyz987"
    out = Redactor([bad]).text("fal-KEYID0042abc and SECRET and part0042xyz987")
    assert "part0042xyz987" not in out and "fal-KEYID0042abc" not in out


def test_short_halves_and_ordinary_words_survive():
    r = Redactor(["ab:cdefg"])  # both halves below the minimum: only the whole is masked
    assert r.text("ab and cdefg, ab:cdefg") == f"ab and cdefg, {MASK}"
    assert Redactor([KEY]).text("key ideas: search then estimate") == "key ideas: search then estimate"


def test_containers_keys_and_values_are_walked_without_mutation():
    data = {KEY: [SECRET, {"api_key": "anything"}], "n": 1}
    out = Redactor([KEY])(data)
    assert out == {MASK: [MASK, {"api_key": MASK}], "n": 1} and KEY in data


def test_clean_json_is_sound_for_every_form():
    r = Redactor([KEY])
    for text in ENCODED.values():
        assert not r.clean_json(json.dumps({"t": text}, ensure_ascii=False))
    assert r.clean_json(json.dumps({"t": "nothing here"}))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.lists(st.integers(1, 30), max_size=8))
def test_stream_split_anywhere_never_shows_the_key(before, after, cuts):
    text = f"{before} {KEY} {after}"
    pieces, i = [], 0
    for cut in cuts:
        pieces.append(text[i:i + cut])
        i += cut
    pieces.append(text[i:])
    stream = StreamRedactor(Redactor([KEY]))
    shown = "".join(stream.feed(p) for p in pieces) + stream.flush()
    assert ID not in shown and SECRET not in shown
    assert shown == Redactor([KEY]).text(text)


def test_stream_releases_words_as_they_end():
    stream = StreamRedactor(Redactor([KEY]))
    assert stream.feed("hello wor") == "hello "
    assert stream.feed("ld, key " + KEY[:10]) == "world, key "
    assert stream.feed(KEY[10:] + " done") == f"{MASK} "
    assert stream.flush() == "done"


def test_remembered_secrets_reach_every_redaction():
    tools_redact.remember_secrets("remembered-id0:remembered-secret0")
    assert tools_redact.redact_text("x remembered-secret0") == f"x {MASK}"
    tools_redact.forget_secrets()
    assert tools_redact.redact_text("x remembered-secret0") == "x remembered-secret0"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3000), st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_a_long_stream_past_the_window_is_still_redacted_whole(where, cuts):
    words = [f"w{i}" for i in range(1500)]
    words.insert(where // 2, f"Authorization: Key {KEY}")
    words.insert(where, f"Bearer {SECRET}")
    text = " ".join(words) + " " + KEY
    stream, shown, i, n = StreamRedactor(Redactor([KEY])), [], 0, 0
    while i < len(text):
        step = cuts[n % len(cuts)]
        shown.append(stream.feed(text[i:i + step]))
        i, n = i + step, n + 1
    shown.append(stream.flush())
    assert "".join(shown) == Redactor([KEY]).text(text)
