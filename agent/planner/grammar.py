"""The offline planner's command grammar: text in, a list of planned steps out.

Pure functions, no LangChain. Steps are separated by `then` (also `;` and `and then`),
never inside a quoted prompt. Each step is one of::

    search <query> [in <category>] [limit <n>]   find text-to-image models | models for flux
                                       (`limit <n>`, `top <n>`, `first <n>`: how many, 1-100)
    price <endpoint> [<endpoint> ...]  how much is fal-ai/flux/dev | what does X cost
    estimate <n> [<unit>] [of] <endpoint> [<n> <endpoint> ...]
                                       unit words `call(s)`/`request(s)`/`run(s)` estimate by
                                       historical price per call, anything else by unit price
    submit <endpoint> prompt "<text>" [key=value ...]
    submit <endpoint> {"prompt": "...", ...}       (a JSON object of arguments)
    generate "<prompt>" with <endpoint> [key=value ...]
    edit <path> [with <endpoint>] prompt "<text>" [key=value ...]
                                       image-to-image on a local file (default endpoint
                                       fal-ai/flux/dev/image-to-image)
    upscale <path> [with <endpoint>] [key=value ...]     (default fal-ai/esrgan)
    animate <path> [with <endpoint>] [prompt "<text>"]   image-to-video (default
                                       fal-ai/ltx-video/image-to-video)
    status [<endpoint> <request_id>]   check it | is it done
    watch|stream|follow [<endpoint> <request_id>]
    result [<endpoint> <request_id>]   get the output
    cancel [<endpoint> <request_id>]
    jwks                               webhook keys
    <tool_name> [key=value ...] [{...}] any bound tool by its name, e.g. an MCP server's
                                       notes_save_note text=$url ($last: the previous
                                       result's text, $url: its first URL)
    help

`status`, `watch`, `result` and `cancel` without ids refer to the latest request in the
conversation (see `agent.planner.refs`). `priority=low` and `webhook_url=...` in a submit are
passed to the tool, not the model. A local path in a media argument (`image_url=./a.png`, or
the file of `edit`/`upscale`/`animate`) is uploaded by the guard once the submit is approved.
Anything else is reported as not understood.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tools.errors import AppError

ENDPOINT_RE = re.compile(r"(?<![\w/.-])([A-Za-z0-9][\w.-]*/[\w.-]+(?:/[\w.-]+)*)(?![\w/])")
UUID_RE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_QUOTED_RE = re.compile(r"\"([^\"]*)\"|“([^”]*)”|'([^']*)'")
_KV_RE = re.compile(r"(?<![\w-])([A-Za-z_][\w]*)=(\"[^\"]*\"|'[^']*'|\S+)")
_SPLIT_RE = re.compile(r"\s*(?:;|,?\s*\b(?:and\s+)?then\b)\s*", re.IGNORECASE)
_FILLER_RE = re.compile(
    r"^(?:(?:please|pls|ok|okay|now|also|and|next|first|finally|so|can you|could you|would you|"
    r"i want to|i'd like to|i would like to|let's|lets|go ahead and|you should)\b[\s,]*)+",
    re.IGNORECASE,
)
_CATEGORY_RE = re.compile(r"\b([a-z]+(?:-to-[a-z]+)+|training|llm|audio|video|3d)\b", re.IGNORECASE)
_CALL_UNITS = {"call", "calls", "request", "requests", "run", "runs", "api", "generation", "generations"}
_LIMIT_RE = re.compile(r"\b(?:limit|top|first)\s*[:=]?\s*(\d{1,4})\b", re.IGNORECASE)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][\w-]{5,}$")
_TOOL_STEP_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*_[A-Za-z0-9_-]+)(?:\s+(.*))?$", re.S)

HELP_TEXT = """I am the offline planner: I understand these commands (join several with "then"):
  search <query> [in <category>] [limit <n>]  e.g. find text-to-image models, search flux limit 30
  price <endpoint> [<endpoint> ...]     e.g. how much is fal-ai/flux/dev
  estimate <n> [images|calls] <endpoint>  e.g. estimate 10 images of fal-ai/flux/dev
  submit <endpoint> prompt "<text>" [key=value ...]   or: generate "<text>" with <endpoint>
  edit <path> [with <endpoint>] prompt "<text>"   e.g. edit ./photo.png prompt "watercolor"
  upscale <path> [with <endpoint>]      animate <path> [with <endpoint>] [prompt "<text>"]
                                        (key=value args may name local files: image_url=./a.png)
  status|watch|result|cancel [<endpoint> <request_id>]  (no ids: the latest request)
  jwks                                  the webhook signing keys
  <tool_name> key=value ...             any tool by name ($url, $last: the previous result)
  help                                  this text
Example: submit fal-ai/flux/schnell prompt "a red fox" then watch it then result
Set OPENAI_API_KEY (or OPENAI_BASE_URL) for free-form language."""


class GrammarError(AppError, ValueError):
    """A step the planner does not understand; `step` is its text."""

    def __init__(self, step: str, why: str = "") -> None:
        self.step = step
        self.why = why
        super().__init__(f'I did not understand "{step}"' + (f" ({why})" if why else ""))


@dataclass(frozen=True)
class Step:
    """One planned action: call `tool` with `args`, or answer (`tool` None, e.g. help).

    `needs_ref` marks a queue step whose endpoint/request id come from an earlier result.
    """

    text: str
    tool: str | None
    args: dict[str, Any] = field(default_factory=dict)
    needs_ref: bool = False


def split_steps(text: str) -> list[str]:
    """Split on `then`/`;` outside quotes; empty pieces are dropped."""
    pieces: list[str] = []
    buf, last = [], 0
    for m in _QUOTED_RE.finditer(text):
        buf.append(("raw", text[last:m.start()]))
        buf.append(("quoted", m.group(0)))
        last = m.end()
    buf.append(("raw", text[last:]))
    current = ""
    for kind, chunk in buf:
        if kind == "quoted":
            current += chunk
            continue
        parts = _SPLIT_RE.split(chunk)
        current += parts[0]
        for part in parts[1:]:
            pieces.append(current)
            current = part
    pieces.append(current)
    return [p.strip(" \t\n,.") for p in pieces if p.strip(" \t\n,.")]


def _clean(step: str) -> str:
    """Drop politeness and trailing punctuation, keep case (ids and prompts are case-sensitive)."""
    step = step.strip().rstrip("?!. ")
    step = _FILLER_RE.sub("", step).strip()
    return re.sub(r"\s+(?:please|pls)$", "", step, flags=re.IGNORECASE)


def _value(raw: str) -> Any:
    """A key=value value: quoted text as is, JSON literals (numbers, true, null) parsed."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _endpoints(text: str) -> list[str]:
    """Endpoint ids in order of appearance, without duplicates."""
    seen: list[str] = []
    for m in ENDPOINT_RE.finditer(text):
        ep = m.group(1).rstrip(".,")
        if ep not in seen and not ep.startswith(("http", "www.")):
            seen.append(ep)
    return seen


def _queue_step(step: str, tool: str) -> Step:
    """status/watch/result/cancel: explicit `<endpoint> <request_id>` or a reference."""
    eps = _endpoints(step)
    uuid = UUID_RE.search(step)
    request_id = uuid.group(0) if uuid else None
    if eps and request_id is None:
        after = step[step.find(eps[0]) + len(eps[0]):].split()
        if after and _REQUEST_ID_RE.match(after[0]):
            request_id = after[0]
    if eps and request_id:
        args: dict[str, Any] = {"endpoint_id": eps[0], "request_id": request_id}
        return Step(step, tool, args)
    if eps or request_id:
        partial = {"endpoint_id": eps[0]} if eps else {"request_id": request_id}
        return Step(step, tool, partial, needs_ref=True)
    return Step(step, tool, {}, needs_ref=True)


def _submit_step(step: str, body: str) -> Step:
    """submit/generate: endpoint, prompt (quoted, JSON, `prompt ...` or free words), key=values."""
    eps = _endpoints(body)
    if not eps:
        raise GrammarError(step, "which endpoint? e.g. fal-ai/flux/schnell")
    endpoint = eps[0]
    arguments, options = _arguments(step, body, endpoint)
    if not arguments:
        raise GrammarError(step, 'what should it make? add prompt "..."')
    return Step(step, "submit_queue_request", {"endpoint_id": endpoint, "arguments": arguments, **options})


def _json_object(step: str, body: str) -> tuple[dict[str, Any], str]:
    """(the JSON object in `body` from its first `{` to its last `}`, the text before it);
    ({}, body) when there is none. GrammarError for invalid JSON or a non-object."""
    brace = body.find("{")
    if brace < 0:
        return {}, body
    try:
        parsed = json.loads(body[brace:body.rfind("}") + 1])
    except ValueError as exc:
        raise GrammarError(step, f"the arguments are not valid JSON: {_json_error(exc)}") from None
    if not isinstance(parsed, dict):
        raise GrammarError(step, "the arguments must be a JSON object")
    return dict(parsed), body[:brace]


def _arguments(step: str, body: str, endpoint: str, *,
               free_prompt: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model arguments, submit options) from a submit's text: a JSON object, key=value pairs,
    a quoted prompt, `prompt ...`, or (with `free_prompt`) the words left over."""
    options: dict[str, Any] = {}
    arguments, body = _json_object(step, body)
    for m in _KV_RE.finditer(body):
        key, val = m.group(1), _value(m.group(2))
        if key in ("priority", "webhook_url", "webhook"):
            options["webhook_url" if key == "webhook" else key] = val
        else:
            arguments[key] = val
    rest = _KV_RE.sub(" ", body)
    quoted = _QUOTED_RE.search(rest)
    if quoted:
        arguments.setdefault("prompt", next(g for g in quoted.groups() if g is not None))
    elif "prompt" not in arguments:
        said = re.search(r"\bprompt\b\s*:?\s*(.+)$", rest, re.IGNORECASE)
        if said is None and not free_prompt:
            return arguments, options
        free = said.group(1) if said else rest.replace(endpoint, " ")
        free = re.sub(r"\b(?:with|on|using|via)\s*$", "", free.strip(), flags=re.IGNORECASE)
        free = re.sub(r"^(?:an?\s+)?(?:image|picture|photo|video)s?\s+of\s+", "", free.strip(), flags=re.IGNORECASE)
        free = free.strip(" :,")
        if free:
            arguments["prompt"] = free
    return arguments, options


# What `edit`, `upscale` and `animate` run when no endpoint is named (all in the sandbox too).
MEDIA_DEFAULTS = {"edit": "fal-ai/flux/dev/image-to-image", "upscale": "fal-ai/esrgan",
                  "animate": "fal-ai/ltx-video/image-to-video"}
ANIMATE_PROMPT = "animate this image"
"""The prompt `animate` sends when none is given (image-to-video models require one)."""
_PATH_RE = re.compile(r"\s*(?:\"([^\"]+)\"|'([^']+)'|(\S+))")


def _media_step(step: str, verb: str, body: str) -> Step:
    """edit/upscale/animate <path> [with <endpoint>] [prompt "..."] [key=value ...]: a submit
    whose `image_url` is the local file (the guard uploads it once the submit is approved)."""
    m = _PATH_RE.match(body)
    path = next((g for g in m.groups() if g), "") if m else ""
    path = path[1:] if path.startswith("@") and len(path) > 1 else path
    if not path or "=" in path:
        raise GrammarError(step, f"{verb} which file? e.g. {verb} ./photo.png")
    rest = body[m.end():] if m else ""
    eps = _endpoints(rest)
    endpoint = eps[0] if eps else MEDIA_DEFAULTS[verb]
    rest = re.sub(r"\b(?:with|using|on|via)\s+" + re.escape(endpoint), " ", rest, count=1) if eps else rest
    arguments, options = _arguments(step, rest, endpoint, free_prompt=verb == "edit")
    if verb == "edit" and not arguments.get("prompt"):
        raise GrammarError(step, 'how should it change? add prompt "...", e.g. prompt "watercolor"')
    if verb == "animate":
        arguments.setdefault("prompt", ANIMATE_PROMPT)
    arguments = {"image_url": path, **arguments}
    return Step(step, "submit_queue_request", {"endpoint_id": endpoint, "arguments": arguments, **options})


def _estimate_step(step: str, body: str) -> Step:
    """estimate: pairs of (quantity, endpoint); a `calls` unit means per-call history."""
    pairs: dict[str, float] = {}
    per_call = False
    pattern = re.compile(r"(\d+(?:\.\d+)?)\s*(?:x\s*)?(?:([A-Za-z]+)\s+)?(?:(?:of|for|with|on|using)\s+)?" + ENDPOINT_RE.pattern)
    for m in pattern.finditer(body):
        qty, unit, ep = float(m.group(1)), (m.group(2) or "").lower(), m.group(3)
        per_call = per_call or unit in _CALL_UNITS
        pairs[ep] = int(qty) if qty.is_integer() else qty
    if not pairs:
        eps = _endpoints(body)
        num = re.search(r"\b(\d+(?:\.\d+)?)\b", body.replace(eps[0], "") if eps else body)
        if not eps or not num:
            raise GrammarError(step, "say how many and of which endpoint, e.g. estimate 10 fal-ai/flux/dev")
        qty = float(num.group(1))
        pairs[eps[0]] = int(qty) if qty.is_integer() else qty
        after = body[num.end():].split()
        per_call = bool(after) and after[0].lower() in _CALL_UNITS
    kind = "historical_api_price" if per_call else "unit_price"
    return Step(step, "estimate_pricing", {"estimate_type": kind, "endpoints": pairs})


def _search_step(step: str, body: str) -> Step:
    """search: a query, a category (`in <category>` or a `x-to-y` word), or both; `limit <n>`
    (or `top <n>`, `first <n>`) asks for that many rows (1-100; the tool's default is 20)."""
    args: dict[str, Any] = {}
    lim = _LIMIT_RE.search(body)
    if lim:
        args["limit"] = max(1, min(100, int(lim.group(1))))
        body = f"{body[:lim.start()]} {body[lim.end():]}".strip()
    m = re.search(r"\s+(?:in|under|from)\s+(?:the\s+)?(?:category\s+)?(\S+)(?:\s+category)?$", body, re.IGNORECASE)
    if m:
        args["category"] = m.group(1).lower()
        body = body[:m.start()]
    body = re.sub(r"^(?:(?:me|all|some|the|for|about|available|models?|endpoints?|that|which|can|do|are|there)\b\s*)+", "", body.strip(), flags=re.IGNORECASE)
    body = re.sub(r"\s*\b(?:models?|endpoints?)\b\s*$", "", body, flags=re.IGNORECASE).strip(" :")
    cat = _CATEGORY_RE.fullmatch(body)
    if cat and "category" not in args and "-to-" in body:
        args["category"] = body.lower()
    elif body:
        args["query"] = body.strip("\"'")
    if not args:
        raise GrammarError(step, "search for what? e.g. search flux")
    return Step(step, "search_models", args)


_VERBS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:/?help|\?|what can you do|commands)$", re.I), "help"),
    (re.compile(r"^(?:get\s+|show\s+|fetch\s+)?(?:the\s+)?(?:jwks|webhook (?:signing )?keys|signing keys|public keys)\b", re.I), "jwks"),
    (re.compile(r"^(?:estimate|how much (?:would|will|do|does|for)\s+(?=\d))", re.I), "estimate"),
    (re.compile(r"^(?:price|prices|pricing|cost of|how much (?:is|are|does|do)|what(?:'s| is| does)? (?:the )?(?:price|cost))", re.I), "price"),
    (re.compile(r"^(?:edit|upscale|animate)\b", re.I), "media"),
    (re.compile(r"^(?:submit|generate|create|make|run|render|draw|queue)\b", re.I), "submit"),
    (re.compile(r"^(?:watch|stream|follow|wait for|track)\b", re.I), "watch"),
    (re.compile(r"^(?:status|check|is it (?:done|ready|finished)|what(?:'s| is) the status|get (?:the )?status|poll)\b", re.I), "status"),
    (re.compile(r"^(?:result|results|output|get (?:the )?(?:result|output)s?|fetch (?:the )?(?:result|output)s?|show (?:me )?(?:the )?(?:result|output)s?|download)\b", re.I), "result"),
    (re.compile(r"^(?:cancel|abort|stop|kill)\b", re.I), "cancel"),
    (re.compile(r"^(?:search|find|look for|look up|list|show|which|what)\b", re.I), "search"),
    (re.compile(r"^(?:models?|endpoints?)\s+(?:for|about|in|with)\b", re.I), "search"),
]
_QUEUE_TOOLS = {"status": "get_queue_status", "watch": "stream_queue_status",
                "result": "get_queue_result", "cancel": "cancel_queue_request"}


def _tool_step(step: str, name: str, body: str) -> Step:
    """`<tool_name> key=value ... [{json}]`: a call by the tool's own name."""
    args, body = _json_object(step, body)
    args.update({m.group(1): _value(m.group(2)) for m in _KV_RE.finditer(body)})
    if _KV_RE.sub(" ", body).strip():
        raise GrammarError(step, f"give {name}'s arguments as key=value pairs or one JSON object")
    return Step(step, name, args)


def parse_step(raw: str) -> Step:
    """One step's text to a Step; GrammarError when nothing matches."""
    step = _clean(raw)
    named = _TOOL_STEP_RE.match(step)
    if named:  # a snake_case first word is a tool's own name, never one of the verbs below
        return _tool_step(step, named.group(1), named.group(2) or "")
    for pattern, verb in _VERBS:
        m = pattern.match(step)
        if not m:
            continue
        body = step[m.end():].strip()
        if verb == "help":
            return Step(step, None, {"help": True})
        if verb == "jwks":
            return Step(step, "get_webhook_jwks", {})
        if verb == "estimate":
            return _estimate_step(step, body)
        if verb == "price":
            eps = _endpoints(body)
            if not eps:
                raise GrammarError(step, "price of which endpoint? e.g. price fal-ai/flux/dev")
            if re.search(r"\b\d+(?:\.\d+)?\s+(?:[A-Za-z]+\s+)?(?:of|for|with)?\s*" + re.escape(eps[0]), body):
                return _estimate_step(step, body)
            return Step(step, "get_pricing", {"endpoint_ids": eps})
        if verb == "submit":
            return _submit_step(step, body)
        if verb == "media":
            return _media_step(step, m.group(0).lower(), body)
        if verb in _QUEUE_TOOLS:
            return _queue_step(step, _QUEUE_TOOLS[verb])
        return _search_step(step, body)
    raise GrammarError(step)


def parse(text: str) -> list[Step]:
    """The whole message to its steps; GrammarError names the first step not understood."""
    pieces = split_steps(text)
    if not pieces:
        raise GrammarError(text.strip(), "the message is empty")
    return [parse_step(p) for p in pieces]


def _json_error(exc: ValueError) -> str:
    """What was wrong with JSON that did not load (a syntax error's own words, or why else)."""
    return exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
