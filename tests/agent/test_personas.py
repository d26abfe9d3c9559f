"""Persona loading: shipped files, user overrides, and every kind of broken file."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from agent import locations
from agent.personas import Persona, PersonaError, get_persona, load_persona_file, load_personas
from tools.registry import DEFAULT_TOOLS as ALL_TOOLS
from tools.registry import TOOL_KINDS as TOOL_KIND

GUARDED_TOOLS = {"submit_queue_request", "cancel_queue_request"}

GOOD = """
description = "test persona"
budget_usd = 1.5
tools = ["search_models", "submit_queue_request"]
system_prompt = "You help."
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_tool_constants_match_the_design():
    assert set(ALL_TOOLS) == {
        "cancel_queue_request", "estimate_pricing", "get_webhook_jwks", "search_models",
        "get_pricing", "get_queue_result", "get_queue_status", "stream_queue_status",
        "submit_queue_request",
    }
    assert TOOL_KIND["submit_queue_request"] == "spend"
    assert TOOL_KIND["cancel_queue_request"] == "destructive"
    assert GUARDED_TOOLS == {"submit_queue_request", "cancel_queue_request"}


def test_shipped_personas():
    personas = load_personas()
    assert {"producer", "analyst", "ops"} <= set(personas)

    producer = personas["producer"]
    assert producer.tools == [*ALL_TOOLS, "upload_file"]  # the nine, and local files in
    assert set(producer.approval) == {"submit_queue_request", "cancel_queue_request", "upload_file"}
    assert producer.budget_usd > 0

    analyst = personas["analyst"]
    assert set(analyst.tools) == {"search_models", "get_pricing", "estimate_pricing",
                                  "get_queue_status", "get_queue_result", "get_webhook_jwks"}
    assert all(TOOL_KIND[t] == "read" for t in analyst.tools)
    assert analyst.approval == []

    ops = personas["ops"]
    assert set(ops.tools) == {"get_queue_status", "stream_queue_status", "get_queue_result",
                              "cancel_queue_request", "get_webhook_jwks"}
    assert ops.approval == ["cancel_queue_request"]
    assert ops.needs_approval("cancel_queue_request") and not ops.allows("submit_queue_request")


@pytest.mark.parametrize("name", ["producer", "analyst", "ops"])
def test_shipped_prompts_teach_the_chain_and_the_rules(name):
    prompt = load_personas()[name].system_prompt
    assert "COMPLETED" in prompt
    assert "invent" in prompt.lower()
    assert "concise" in prompt.lower()


def test_user_file_overrides_shipped_one():
    write(locations.user_personas_dir(), "analyst", GOOD)
    personas = load_personas()
    assert personas["analyst"].description == "test persona"
    assert personas["analyst"].source.endswith("analyst.toml")
    assert "producer" in personas  # the rest still load


def test_star_and_default_approval():
    path = write(locations.user_personas_dir(), "all", GOOD.replace(
        'tools = ["search_models", "submit_queue_request"]', 'tools = ["*"]'))
    persona = load_persona_file(path)
    assert persona.tools == list(ALL_TOOLS)
    # No approval list given: whatever spends or cancels asks first.
    assert set(persona.approval) == GUARDED_TOOLS


def test_star_with_upload_file_asks_before_uploading():
    path = write(locations.user_personas_dir(), "files", GOOD.replace(
        'tools = ["search_models", "submit_queue_request"]', 'tools = ["*", "upload_file"]'))
    persona = load_persona_file(path)
    assert persona.tools == [*ALL_TOOLS, "upload_file"]
    # The default approval list takes the upload kind too: a file leaving the machine is asked about.
    assert set(persona.approval) == GUARDED_TOOLS | {"upload_file"}


def test_triggers_and_schedules_are_kept_raw():
    text = GOOD + """
[[triggers]]
endpoint = "fal-ai/flux/dev"
status = "OK"
action = { tool = "get_queue_result" }

[schedules.nightly]
cron = "0 3 * * *"
prompt = "estimate 10 images"
"""
    persona = load_persona_file(write(locations.user_personas_dir(), "t", text))
    assert persona.triggers == [{"endpoint": "fal-ai/flux/dev", "status": "OK",
                                 "action": {"tool": "get_queue_result"}}]
    assert persona.schedules == [{"name": "nightly", "cron": "0 3 * * *",
                                  "prompt": "estimate 10 images"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("1.5", "0"), "budget_usd: Input should be greater than 0"),
        (GOOD.replace("1.5", "-2"), "budget_usd: Input should be greater than 0"),
        (GOOD.replace("1.5", '"lots"'), "budget_usd: Input should be a valid number"),
        (GOOD.replace("1.5", "nan"), "budget_usd:"),
        (GOOD.replace('"search_models"', '"serch_models"'), "tools: unknown tool 'serch_models'"),
        (GOOD.replace('["search_models", "submit_queue_request"]', "[]"), "tools: List should have at least 1"),
        (GOOD + 'approval = ["rm_rf"]\n', "approval: unknown tool 'rm_rf'"),
        (GOOD + 'approval = ["cancel_queue_request"]\n', "approval: cancel_queue_request not in"),
        (GOOD.replace('system_prompt = "You help."', ""), "system_prompt: Field required"),
        (GOOD.replace('"You help."', '"   "'), "system_prompt: must not be blank"),
        (GOOD + "temperature = 0.2\n", "temperature: unknown field"),
        (GOOD + "model = 3\n", "model: Input should be a valid string"),
        (GOOD + "triggers = 5\n", "triggers: Input should be a valid list"),
        (GOOD + "triggers = [1]\n", "triggers[0]: Input should be a valid dictionary"),
        (GOOD + 'name = "other"\n', "name: 'other' must match the file name 'broken'"),
    ],
)
def test_broken_files_name_the_file_and_the_field(text, expected):
    write(locations.user_personas_dir(), "broken", text)
    with pytest.raises(PersonaError) as info:
        load_personas()
    message = str(info.value)
    assert "broken.toml: " in message
    assert expected in message


def test_message_for_shipped_style_file_uses_short_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "prompts", "analyst", GOOD.replace("1.5", "0"))
    with pytest.raises(PersonaError) as info:
        load_persona_file(path)
    assert str(info.value) == "prompts/analyst.toml: budget_usd: Input should be greater than 0"


def test_toml_syntax_error_names_file_and_line():
    path = write(locations.user_personas_dir(), "syntax", GOOD + "tools = [\n\nbudget = \n")
    with pytest.raises(PersonaError) as info:
        load_persona_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line ") or "syntax.toml: line " in message
    assert "TOML syntax error" in message


def test_toml_syntax_error_line_number_is_right():
    path = write(locations.user_personas_dir(), "eq", 'description = "x"\nbudget_usd 3\n')
    with pytest.raises(PersonaError, match=r"eq\.toml: line 2: TOML syntax error"):
        load_persona_file(path)


def test_not_utf8_and_unreadable():
    path = locations.user_personas_dir() / "bin.toml"
    path.write_bytes(b'description = "\xff\xfe"\n')
    with pytest.raises(PersonaError, match=r"bin\.toml: not UTF-8"):
        load_persona_file(path)
    with pytest.raises(PersonaError, match=r"missing\.toml: cannot read"):
        load_persona_file(locations.user_personas_dir() / "missing.toml")


def test_get_persona_lists_known_names_when_unknown():
    assert get_persona("ops").name == "ops"
    with pytest.raises(PersonaError, match=r"unknown persona 'nope' \(known: analyst, ops, producer"):
        get_persona("nope")


def test_persona_is_immutable_and_source_not_serialised():
    persona = load_personas()["producer"]
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        persona.budget_usd = 100  # type: ignore[misc]  # assigning to a frozen field is the point
    assert "source" not in persona.model_dump()
    assert isinstance(persona, Persona)


def test_non_toml_files_are_ignored():
    (locations.user_personas_dir() / "README.md").write_text("not a persona")
    assert "README" not in load_personas()


def test_toml_error_at_end_of_document_still_names_a_line():
    path = write(locations.user_personas_dir(), "eod", 'description = "x"\ntools = [\n')
    with pytest.raises(PersonaError, match=r"eod\.toml: line 2: TOML syntax error"):
        load_persona_file(path)


def test_several_problems_are_reported_together():
    path = write(locations.user_personas_dir(), "many", 'budget_usd = 0\ntools = ["x"]\n')
    message = str(pytest.raises(PersonaError, load_persona_file, path).value)
    assert message.count("many.toml") == 1
    for part in ("budget_usd: Input should be greater than 0", "tools: unknown tool 'x'",
                 "system_prompt: Field required"):
        assert part in message
