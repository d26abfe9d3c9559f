"""`fal-persona ask "..."`: one request without the TUI, fit for scripts.

Approvals are decided by `--yes` / `--no-approve`, else asked on the terminal (y/n/e); with no
terminal and no flag every spend/cancel is rejected, and stderr says why. The answer goes to
stdout, then the local path of each saved result file, one a line; `--json` prints one object:
answer, tool_calls, saved, session_id, spent_usd, exit_code, error.

Result media (what a `get_queue_result` returns: images, video, audio, any file; a
transcript's text as a `.txt`) is downloaded before the runtime, and with it the built-in
sandbox that serves the files, shuts down: into `--save DIR`, else the data dir's `media/`.
The exit status says whether the request did what it asked; the codes are the
`EXIT_*` constants below, documented in README ("Exit codes of `ask`"), and every non-zero
one comes with one `fal-persona: <reason>` line on stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from agent.cli import CliError
from agent.core.events import ApprovalRequest, Decision, ErrorEvent, ToolEnd, ToolStart, TurnEnd
from agent.redact import redact, redact_text
from tools.outcome import jsonable, outcome_of


def _show(request: ApprovalRequest) -> str:
    """The approval prompt's description of a call: for a submit, what this call costs."""
    from agent.core.gate import money
    from agent.core.media_inputs import approval_lines

    lines = [f"WARNING: {request.warning}"] if request.warning else []
    lines += [f"Approve {request.kind} tool {request.name}?",
             f"  args: {redact_text(json.dumps(request.args, default=str))}"]
    if request.name == "submit_queue_request":
        basis = f" ({request.cost_basis})" if request.cost_basis and request.estimate_usd is not None else ""
        cost = "cost unknown" if request.estimate_usd is None else money(request.estimate_usd)
        lines.append(f"  cost of this call: {cost}{basis}")
    elif request.estimate_usd is not None:
        lines.append(f"  estimate: {money(request.estimate_usd)}")
    if request.budget_left_usd is not None:
        lines.append(f"  budget left: {money(request.budget_left_usd)}")
    lines += [f"  {line}" for line in approval_lines(request)]
    return "\n".join(lines)


def _ask_terminal(request: ApprovalRequest) -> Decision:
    """Ask on the terminal: y approves, n rejects, e edits the arguments (one JSON line)."""
    print(_show(request), file=sys.stderr)
    while True:
        print("[y]es / [n]o / [e]dit args: ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if not answer:  # end of input: the safe answer
            return Decision(action="reject", reason="no answer on the terminal")
        choice = answer.strip().lower()
        if choice in ("y", "yes"):
            return Decision(action="approve")
        if choice in ("n", "no", ""):
            return Decision(action="reject", reason="rejected on the terminal")
        if choice in ("e", "edit"):
            print("new args as one JSON object: ", end="", file=sys.stderr, flush=True)
            try:
                args = json.loads(sys.stdin.readline())
            except ValueError as exc:
                print(f"not JSON ({exc}); try again", file=sys.stderr)
                continue
            if isinstance(args, dict):
                return Decision(action="edit", args=args)
            print("the args must be a JSON object; try again", file=sys.stderr)


def make_approver(args: Any) -> Any:
    """The approver the flags (or the terminal) call for."""
    async def approver(request: ApprovalRequest) -> Decision:
        if getattr(args, "yes", False):
            if request.warning:  # a blanket yes was not given knowing fal may have the first one
                print(f"fal-persona: {request.warning} Not with --yes: rejected (ask on a terminal "
                      "to approve it)", file=sys.stderr)
                return Decision(action="reject", reason="--yes does not approve a submit that may repeat "
                                "one fal already has")
            return Decision(action="approve", reason="--yes")
        if getattr(args, "no_approve", False):
            return Decision(action="reject", reason="--no-approve")
        if sys.stdin.isatty():
            return await asyncio.to_thread(_ask_terminal, request)
        print(f"fal-persona: {request.name} needs approval and there is no terminal to ask; "
              "rejected (pass --yes or --no-approve)", file=sys.stderr)
        return Decision(action="reject", reason="no terminal to ask for approval")
    return approver


# Exit codes (README, "Exit codes of `ask`"). 1 stays Python's own (an unexpected crash) and
# 130 is an interrupt (agent.cli.main); 2 is bad usage, as argparse and CliError give it.
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_UNDERSTOOD = 3
EXIT_TOOL_FAILED = 4
EXIT_REJECTED = 5
EXIT_REFUSED = 6
EXIT_TURN_FAILED = 7
EXIT_TIMEOUT = 8
EXIT_SAVE_FAILED = 9
EXIT_TRANSCRIPT_FAILED = 10
RESULT_TOOL = "get_queue_result"


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _why(event: ToolEnd) -> str:
    """A failed call's first line without the tools' `Error: <name>:` lead."""
    line = _first_line(event.content).removeprefix("Error:").strip()
    return line.removeprefix(f"{event.name}:").strip() or "no detail given"


class Outcome:
    """What the request came to: the first failure decides the exit code and the reason."""

    def __init__(self) -> None:
        self.code = EXIT_OK
        self.reason = ""

    def fail(self, code: int, reason: str) -> None:
        """Note a failure; the first one wins (later ones are usually its consequences)."""
        if self.code == EXIT_OK:
            self.code, self.reason = code, reason


class Approvals:
    """The flags' (or the terminal's) approver, remembering what it was asked and decided."""

    def __init__(self, args: Any) -> None:
        self.asked: set[str] = set()
        self.rejected: dict[str, str] = {}
        self._decide = make_approver(args)

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.asked.add(request.call_id)
        decision = await self._decide(request)
        if decision.action == "reject":
            self.rejected[request.call_id] = decision.reason
        return decision


def _tool_failure(event: ToolEnd, kind: str, runner: Any, approvals: Approvals) -> tuple[int, str]:
    """Exit code and reason for a tool call that ended in an error, from what is known of it."""
    gate = runner.gate
    if event.call_id in approvals.rejected:
        why = approvals.rejected[event.call_id]
        return EXIT_REJECTED, f"approval rejected: {event.name} was not run" + (f" ({why})" if why else "")
    if event.name not in gate.allowed():
        return EXIT_REFUSED, (f"refused: {event.name} is outside the scope of the {runner.persona.name} "
                              "persona; it was not run")
    if outcome_of(event.artifact, "error").kind == "refused":  # a guard stopped it (schema, budget...)
        return EXIT_REFUSED, f"refused: {event.name} was not run: {_why(event)}"
    if kind != "read" and gate.needs_approval(event.name) and event.call_id not in approvals.asked:
        # Never put to the approver: the guard refused it first (e.g. over the budget).
        return EXIT_REFUSED, f"refused: {event.name} was not run: {_why(event)}"
    return EXIT_TOOL_FAILED, f"{event.name} failed: {_why(event)}"


def _planner_shortfall(runner: Any, text: str, taken: int) -> tuple[int, str] | None:
    """For the offline planner: why it ran fewer steps than the request asks for, or None.

    The planner is deterministic, so its own parse of the text (and the persona's tools) says
    what it could not do, without reading its answer's wording."""
    from agent.planner.model import OfflinePlanner

    if not isinstance(runner.model, OfflinePlanner):
        return None
    from agent.planner.grammar import GrammarError, parse

    try:
        steps = parse(text)
    except GrammarError as exc:
        why = f" ({exc.why})" if exc.why else ""
        return EXIT_NOT_UNDERSTOOD, (f'not understood: the offline planner did not understand "{exc.step}"'
                                     f"{why}; nothing was run (try: help)")
    planned = []
    for step in steps:
        if step.tool is None:  # help: the planner answers and stops there
            break
        planned.append(step)
    if taken >= len(planned):
        return None
    step = planned[taken]
    if step.tool not in {t.name for t in runner.tools}:
        return EXIT_REFUSED, (f'refused: the {runner.persona.name} persona may not use {step.tool} '
                              f'(needed for "{step.text}")')
    return EXIT_NOT_UNDERSTOOD, (f'not understood: "{step.text}" needs an endpoint and a request id, '
                                 "and no earlier request gives them")


def _result_text(result: Any) -> str | None:
    """The text a result is about (speech-to-text's top-level `text`), or None."""
    text = result.get("text") if isinstance(result, dict) else None
    return text if isinstance(text, str) and text.strip() else None


async def _save_all(results: list[tuple[str, Any]], save_dir: str | None,
                    outcome: Outcome) -> list[dict[str, Any]]:
    """Download every media file in `results` ((request id, artifact) pairs) and save it."""
    from pathlib import Path

    from agent.locations import media_dir
    from agent.media import MediaError, find_media, save_bytes, save_media

    saved: list[dict[str, Any]] = []
    for request_id, artifact in results:
        text = _result_text(artifact)
        if text is not None and not find_media(artifact):  # a transcript: the text is the result
            try:
                folder = Path(save_dir).expanduser() if save_dir else media_dir()
                path = save_bytes(text.encode("utf-8"), folder, request_id, ".txt")
                saved.append({"url": None, "content_type": "text/plain", "path": str(path.resolve())})
            except OSError as exc:
                reason = f"could not save the text of {request_id}: {exc.strerror or exc}"
                saved.append({"url": None, "content_type": "text/plain", "error": reason})
                outcome.fail(EXIT_SAVE_FAILED, reason)
            continue
        for ref in find_media(artifact):
            entry: dict[str, Any] = {"url": ref.url, "content_type": ref.content_type or None}
            try:
                folder = Path(save_dir).expanduser() if save_dir else media_dir()
                path = await save_media(ref, folder, stem=request_id)
                entry["path"] = str(path.resolve())
            except (MediaError, OSError) as exc:
                shown = ref.url if not ref.url.startswith("data:") else "an inline data: URL"
                reason = f"could not save {shown[:200]}: {getattr(exc, 'strerror', None) or exc}"
                entry["error"] = reason
                outcome.fail(EXIT_SAVE_FAILED, reason)
                if outcome.reason != reason:  # the deciding reason is printed once, at the end
                    print(f"fal-persona: {reason}", file=sys.stderr)
            saved.append(entry)
    return saved


async def _turn(runtime: Any, args: Any, outcome: Outcome) -> dict[str, Any]:
    """Run the request; returns answer, tool calls and the results that may hold media."""
    import contextlib

    runner = runtime.runner
    approvals = Approvals(args)
    calls: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    results: list[tuple[str, Any]] = []
    answer = ""
    timeout = getattr(args, "timeout", None)
    async with contextlib.aclosing(runner.run_turn(args.text, approvals)) as events:
        try:
            async with asyncio.timeout(timeout):
                async for event in events:
                    if isinstance(event, ToolStart):
                        calls[event.call_id] = {"name": event.name, "args": event.args}
                        kinds[event.call_id] = event.kind
                    elif isinstance(event, ToolEnd):
                        entry = calls.setdefault(event.call_id, {"name": event.name, "args": {}})
                        entry["error" if event.error else "result"] = event.content
                        if event.artifact is not None:
                            entry["artifact"] = jsonable(event.artifact)
                        if event.error:
                            outcome.fail(*_tool_failure(event, kinds.get(event.call_id, "read"), runner, approvals))
                        elif event.name == RESULT_TOOL and event.artifact is not None:
                            results.append((str(entry["args"].get("request_id") or "result"), entry["artifact"]))
                    elif isinstance(event, ErrorEvent) and event.kind == "transcript":
                        outcome.fail(EXIT_TRANSCRIPT_FAILED, _first_line(event.message))
                        if outcome.reason != _first_line(event.message):  # said once, at the end
                            print(f"fal-persona: {redact_text(_first_line(event.message))}", file=sys.stderr)
                    elif isinstance(event, ErrorEvent):
                        outcome.fail(EXIT_TURN_FAILED, _first_line(event.message) or "the turn failed")
                    elif isinstance(event, TurnEnd):
                        answer = event.answer
        except TimeoutError:
            outcome.fail(EXIT_TIMEOUT, f"timed out after {timeout:g} s (--timeout); the turn was stopped")
    shortfall = _planner_shortfall(runner, args.text, len(calls)) if outcome.code == EXIT_OK else None
    if shortfall is not None:
        outcome.fail(*shortfall)
    return {"answer": answer, "tool_calls": list(calls.values()), "results": results}


async def _run(args: Any) -> int:
    from pydantic import ValidationError

    from agent.core.runtime import build_runtime
    from agent.settings import from_args
    from tools.fal.config import settings_error_text

    try:
        settings = from_args(args)
        runtime = build_runtime(settings, args.persona, source="cli", user=args.user)
    except CliError:
        raise
    except ValidationError as exc:  # bad settings: name the variable, never its value
        raise CliError(settings_error_text(exc)) from None
    except Exception as exc:  # bad persona, sandbox failed to start...
        raise CliError(redact_text(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__) from None
    outcome = Outcome()
    try:
        if getattr(args, "continue_", False) or getattr(args, "resume", None):
            _resume(runtime, getattr(args, "resume", None), explicit_persona=bool(args.persona))
        if runtime.mode == "sandbox" and not args.json:
            print(f"fal-persona: no FAL_KEY set, using the built-in sandbox at {runtime.sandbox_url}",
                  file=sys.stderr)
        for notice in getattr(runtime, "notices", None) or []:
            print(f"fal-persona: {notice}", file=sys.stderr)
        hub = getattr(runtime, "mcp", None)  # a persona's MCP server that dies mid-request says so
        if hub is not None:
            hub.subscribe(lambda text: print(f"fal-persona: {text}", file=sys.stderr, flush=True))
        turn = await _turn(runtime, args, outcome)
        # Before aclose: the built-in sandbox serves its result files only while it runs.
        saved = [] if getattr(args, "no_save", False) else await _save_all(
            turn["results"], getattr(args, "save", None), outcome)
    finally:
        await runtime.aclose()
    runner = runtime.runner
    if args.json:
        out: dict[str, Any] = {"answer": turn["answer"], "tool_calls": turn["tool_calls"], "saved": saved,
               "session_id": runner.session_id, "spent_usd": runner.spent_usd, "persona": runner.persona.name,
               "mode": runtime.mode, "model": runtime.model_name, "exit_code": outcome.code}
        if outcome.code != EXIT_OK:
            out["error"] = outcome.reason
        print(json.dumps(redact(jsonable(out)), indent=2, default=str))
    else:
        if turn["answer"]:
            print(redact_text(turn["answer"]))
        for entry in saved:
            if "path" in entry:
                print(entry["path"])
    if outcome.code != EXIT_OK:
        print(f"fal-persona: {redact_text(outcome.reason)}", file=sys.stderr)
    return outcome.code


def _resume(runtime: Any, session_id: str | None, *, explicit_persona: bool) -> None:
    """Go on with a stored chat (`--continue`: the latest; `--resume ID`); approvals it left
    open are asked first, by the same rules as the request's own. `--persona` wins over the
    chat's persona."""
    from agent.transcript.store import TranscriptError

    persona = runtime.runner.persona.name
    try:
        runtime.resume_session(session_id)
    except TranscriptError as exc:
        raise CliError(f"cannot continue: {exc}") from None
    if explicit_persona and runtime.runner.persona.name != persona:
        runtime.switch_persona(persona)


def run(args: Any) -> int:
    """Entry point for `fal-persona ask`."""
    return asyncio.run(_run(args))
