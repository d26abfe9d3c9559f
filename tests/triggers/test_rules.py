"""Rule matching, templating and loading (persona files and the triggers file)."""

from __future__ import annotations

import pytest

from agent import locations
from agent.triggers.rules import (
    Condition,
    EventView,
    Rule,
    RuleError,
    fill,
    load_rules,
    lookup,
    parse_rules,
)

BODY = {"request_id": "r1", "status": "OK", "payload": {
    "images": [{"url": "https://m.example/a.png", "width": 1024}], "seed": 42, "nsfw": False}}


def view(endpoint="fal-ai/flux/dev", status="OK", body=BODY):
    return EventView("r1", status, endpoint, body)


def test_lookup_walks_dicts_and_list_indices():
    assert lookup(BODY, "payload.images.0.width") == 1024
    assert lookup(BODY, "payload.images.-1.url").endswith("a.png")
    for missing in ("payload.images.5.url", "payload.nope", "payload.seed.x", "payload.images.x"):
        assert lookup(BODY, missing) is not None and lookup(BODY, missing) is lookup(BODY, "zz")


@pytest.mark.parametrize("rule,expected", [
    (Rule(name="a", prompt="p"), True),
    (Rule(name="a", prompt="p", endpoint="fal-ai/flux/*"), True),
    (Rule(name="a", prompt="p", endpoint="fal-ai/kling/*"), False),
    (Rule(name="a", prompt="p", status="ERROR"), False),
    (Rule(name="a", prompt="p", status="OK", match=[{"path": "payload.seed", "equals": 42}]), True),
    (Rule(name="a", prompt="p", match=[{"path": "payload.seed", "equals": 43}]), False),
    (Rule(name="a", prompt="p", match=[{"path": "payload.images.0.url", "exists": True}]), True),
    (Rule(name="a", prompt="p", match=[{"path": "payload.video", "exists": False}]), True),
    (Rule(name="a", prompt="p", match=[{"path": "payload.video", "exists": True}]), False),
    (Rule(name="a", prompt="p", match=[{"path": "payload.nsfw", "equals": False}]), True),
    (Rule(name="a", prompt="p", match=[{"path": "payload.nsfw", "equals": 0}]), False),
])
def test_rule_matching(rule, expected):
    assert rule.matches(view()) is expected


def test_endpoint_rule_never_matches_an_unknown_endpoint():
    assert Rule(name="a", prompt="p", endpoint="fal-ai/*").matches(view(endpoint=None)) is False
    assert Rule(name="a", prompt="p").matches(view(endpoint=None)) is True


def test_equals_null_is_a_real_condition():
    cond = Condition(path="error", equals=None)
    assert cond.holds({"error": None}) and not cond.holds({}) and not cond.holds({"error": "x"})


def test_fill_templates_recursively_and_leaves_other_braces():
    fields = view().fields()
    out = fill({"a": "{endpoint_id}/{request_id}", "b": ["{status}", 3], "c": "{json}"}, fields)
    assert out == {"a": "fal-ai/flux/dev/r1", "b": ["OK", 3], "c": "{json}"}


@pytest.mark.parametrize("table,fragment", [
    ({"name": "x"}, "needs at least one of"),
    ({"name": "x", "tool": "rm_rf"}, "unknown tool"),
    ({"name": "x", "prompt": "p", "status": "DONE"}, "status"),
    ({"name": "x", "prompt": "p", "match": [{"path": "a"}]}, "equals"),
    ({"name": "x", "prompt": "p", "colour": "red"}, "colour"),
])
def test_bad_rules_name_file_rule_and_field(table, fragment):
    with pytest.raises(RuleError) as info:
        parse_rules([table], source="triggers.toml")
    assert "triggers.toml: triggers[0] (x)" in str(info.value)
    assert fragment in str(info.value)


def test_triggers_file_and_persona_files_both_load(tmp_path):
    locations.triggers_file().write_text(
        '[[triggers]]\nname = "save"\nendpoint = "fal-ai/*"\nsave_media = true\npersona = "producer"\n'
        '[[schedules]]\nname = "tick"\ncron = "*/5 * * * *"\nprompt = "hi"\n')
    (locations.user_personas_dir() / "watcher.toml").write_text(
        'name = "watcher"\nbudget_usd = 1\ntools = ["get_queue_result"]\nsystem_prompt = "watch"\n'
        '[[triggers]]\nname = "summarise"\nstatus = "OK"\nprompt = "Summarise {request_id}"\n')
    rules = {r.name: r for r in load_rules()}
    assert set(rules) >= {"save", "summarise"}
    assert rules["summarise"].persona == "watcher"
    assert rules["save"].persona == "producer" and rules["save"].save_media is True


def test_broken_triggers_file_is_a_rule_error():
    locations.triggers_file().write_text("[[triggers]\n")
    with pytest.raises(RuleError, match="triggers.toml"):
        load_rules(include_personas=False)
