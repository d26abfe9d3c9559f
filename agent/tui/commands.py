"""Slash commands: parsed into either a direct tool call or a local action (pure)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Slash:
    """A parsed slash command: `tool` + `args` for a direct call, or `action` + `params`."""

    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    action: str | None = None
    params: tuple[str, ...] = ()
    error: str | None = None


# name -> (usage, what it does)
SLASH_HELP: dict[str, tuple[str, str]] = {
    "help": ("/help", "this list"),
    "models": ("/models QUERY", "search the model catalogue"),
    "price": ("/price ENDPOINT...", "unit prices of one or more endpoints"),
    "estimate": ("/estimate N ENDPOINT", "what N units (e.g. images) would cost"),
    "status": ("/status [ENDPOINT ID]", "a request's status (no ids: the latest request)"),
    "watch": ("/watch [ENDPOINT ID]", "follow a request's progress live (no ids: the latest)"),
    "result": ("/result [ENDPOINT ID]", "fetch a finished request's result (no ids: the latest)"),
    "cancel": ("/cancel [ENDPOINT ID]", "cancel a request (asks first; no ids: the latest)"),
    "attach": ("/attach PATH · /detach [N]", "attach a file to the next request (Tab completes "
               "the path; or paste/drop it), take one off (no N: all)"),
    "persona": ("/persona [NAME]", "switch persona (no name: pick from a list)"),
    "export": ("/export md|jsonl", "export this session's transcript to a file"),
    "clear": ("/clear", "clear the chat (the transcript keeps everything)"),
    "new": ("/new", "start a new chat session"),
    "quit": ("/quit", "leave the app (ctrl+q; /exit too)"),
}

_TWO_IDS = {"status": "get_queue_status", "watch": "stream_queue_status",
            "result": "get_queue_result", "cancel": "cancel_queue_request"}


def _usage(name: str) -> str:
    return f"usage: {SLASH_HELP[name][0]}"


def parse_slash(text: str) -> Slash:
    """Parse `/name args...`; unknown names and bad arguments come back with `error` set."""
    head, _, raw_rest = text.strip()[1:].partition(" ")
    if head.lower() in ("attach", "detach"):  # the rest is one path, as typed (spaces, quotes)
        rest_text = raw_rest.strip()
        if head.lower() == "attach" and not rest_text:
            return Slash(error="usage: /attach PATH (Tab completes it)")
        return Slash(action=head.lower(), params=(rest_text,) if rest_text else ())
    try:
        parts = shlex.split(text.strip()[1:])
    except ValueError as exc:
        return Slash(error=f"could not read that command: {exc}")
    if not parts:
        return Slash(error="an empty command; type /help for the list")
    name, rest = parts[0].lower(), parts[1:]
    if name in ("help", "?"):
        return Slash(action="help")
    if name in ("clear", "new"):
        return Slash(action=name)
    if name in ("quit", "exit", "q"):
        return Slash(action="quit")
    if name == "persona":
        return Slash(action="persona", params=tuple(rest[:1]))
    if name == "export":
        fmt = (rest[0].lower() if rest else "md")
        if fmt not in ("md", "jsonl"):
            return Slash(error=_usage("export"))
        return Slash(action="export", params=(fmt,))
    if name in _TWO_IDS:
        if not rest:  # the latest request, filled in by the app (it knows the conversation)
            return Slash(tool=_TWO_IDS[name], action="latest")
        if len(rest) != 2:
            return Slash(error=_usage(name))
        return Slash(tool=_TWO_IDS[name], args={"endpoint_id": rest[0], "request_id": rest[1]})
    if name == "models":
        return Slash(tool="search_models", args={"query": " ".join(rest)} if rest else {})
    if name == "price":
        if not rest:
            return Slash(error=_usage("price"))
        return Slash(tool="get_pricing", args={"endpoint_ids": rest})
    if name == "estimate":
        return _parse_estimate(rest)
    return Slash(error=f"unknown command /{name}; type /help for the list")


def _parse_estimate(rest: list[str]) -> Slash:
    """`/estimate N ENDPOINT` (either order) -> estimate_pricing in unit_price mode."""
    if len(rest) != 2:
        return Slash(error=_usage("estimate"))
    a, b = rest
    number, endpoint = (a, b) if _is_number(a) else (b, a)
    if not _is_number(number) or float(number) <= 0:
        return Slash(error=f"{_usage('estimate')} (N must be a positive number)")
    qty = float(number)
    return Slash(
        tool="estimate_pricing",
        args={"estimate_type": "unit_price", "endpoints": {endpoint: int(qty) if qty.is_integer() else qty}},
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# binding id -> what it does, in the order /help lists them (ids as in agent.tui.keys)
KEY_HELP: tuple[tuple[str, str], ...] = (
    ("send", "sends"),
    ("newline", "adds a newline"),
    ("history_prev", "walks back through your input history"),
    ("history_next", "walks forward through it"),
    ("cancel", "cancels the running turn (its jobs keep running)"),
    ("clear", "clears the chat"),
    ("persona", "switches persona"),
    ("transcript", "browses the transcript"),
    ("jobs", "shows or hides the jobs panel"),
    ("export", "exports the transcript (Markdown)"),
    ("resume", "reopens an earlier chat (search, Enter)"),
)
FIXED_KEYS: tuple[tuple[str, str], ...] = (  # bound in the app itself, not configurable
    ("pageup / pagedown", "scrolls the chat"),
    ("ctrl+p", "opens the command palette"),
    ("ctrl+q", "quits (as do /quit and /exit)"),
)


def help_markdown(keys: dict[str, str] | None = None) -> str:
    """The /help text: every slash command, then every key binding (`keys`: the app's key
    map, so keys rebound in the config file show as they are)."""
    from agent.tui.keys import DEFAULT_KEYS

    keymap = {**DEFAULT_KEYS, **(keys or {})}
    def cell(text: str) -> str:  # a `|` in a usage would end the table cell
        return text.replace("|", "\\|")

    rows = "\n".join(f"| `{cell(usage)}` | {cell(what)} |" for usage, what in SLASH_HELP.values())
    bound = [(" or ".join(k.strip() for k in keymap[name].split(",") if k.strip()), what)
             for name, what in KEY_HELP if keymap.get(name)]
    key_rows = "\n".join(f"| `{cell(key)}` | {cell(what)} |" for key, what in [*bound, *FIXED_KEYS])
    return (
        "**Slash commands** call a tool directly:\n\n| command | does |\n|---|---|\n" + rows
        + "\n\n**Keys** (rebind them under `[keys]` in the config file):\n\n"
        "| key | does |\n|---|---|\n" + key_rows
    )


WELCOME = """\
### Welcome to fal-persona

Drive fal.ai by chatting. {mode_line}

Try these, one at a time (or join them with **then**):

1. `search text-to-image`: find text-to-image models
2. `price fal-ai/flux/dev`: what one image costs
3. `estimate 10 fal-ai/flux/dev`: what 10 images would cost
4. `submit fal-ai/flux/dev prompt "a cat"`: generate (you approve the spend first)
5. `watch then result`: follow its progress in the jobs panel, then see the image here
   (without ids they mean the latest request; or give them: `watch fal-ai/flux/dev <id>`)
6. `/export md`: save this transcript to a file (ctrl+s does the same)

Type `/help` for slash commands; ctrl+p opens the command palette.
"""


def welcome_markdown(mode_line: str) -> str:
    """The welcome message, with a line about sandbox/live mode."""
    return WELCOME.format(mode_line=mode_line)
