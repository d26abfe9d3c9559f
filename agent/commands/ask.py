"""`fal-persona ask "..."`: one request without the TUI.

Approvals are decided by `--yes` / `--no-approve`, else asked on the terminal (y/n/e); with no
terminal and no flag every spend/cancel is rejected, and stderr says why. The answer goes to
stdout; `--json` prints one object: answer, tool_calls, session_id, spent_usd.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from agent.cli import CliError
from agent.events import ApprovalRequest, Decision, ErrorEvent, ToolEnd, ToolStart, TurnEnd


def _show(request: ApprovalRequest) -> str:
    """The approval prompt's description of a call."""
    lines = [f"Approve {request.kind} tool {request.name}?", f"  args: {json.dumps(request.args, default=str)}"]
    if request.estimate_usd is not None:
        lines.append(f"  estimate: ${request.estimate_usd:.4f}")
    if request.budget_left_usd is not None:
        lines.append(f"  budget left: ${request.budget_left_usd:.4f}")
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
            return Decision(action="approve", reason="--yes")
        if getattr(args, "no_approve", False):
            return Decision(action="reject", reason="--no-approve")
        if sys.stdin.isatty():
            return await asyncio.to_thread(_ask_terminal, request)
        print(f"fal-persona: {request.name} needs approval and there is no terminal to ask; "
              "rejected (pass --yes or --no-approve)", file=sys.stderr)
        return Decision(action="reject", reason="no terminal to ask for approval")
    return approver


def _jsonable(value: Any) -> Any:
    """Artifacts as plain JSON."""
    return json.loads(json.dumps(value, default=lambda o: o.model_dump(mode="json") if hasattr(o, "model_dump") else str(o)))


async def _run(args: Any) -> int:
    from pydantic import ValidationError

    from agent.redact import redact_text
    from agent.runtime import build_runtime
    from agent.settings import Settings
    from tools.fal.config import settings_error_text

    try:
        settings = Settings()
        if args.no_log:
            settings = settings.model_copy(update={"no_log": True})
        if getattr(args, "listen", None) is not None:
            settings = settings.model_copy(update={"listen": args.listen})
        runtime = build_runtime(settings, args.persona, source="cli", user=args.user)
    except CliError:
        raise
    except ValidationError as exc:  # bad settings: name the variable, never its value
        raise CliError(settings_error_text(exc)) from None
    except Exception as exc:  # bad persona, sandbox failed to start...
        raise CliError(redact_text(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__) from None
    try:
        if runtime.mode == "sandbox" and not args.json:
            print(f"fal-persona: no FAL_KEY set, using the built-in sandbox at {runtime.sandbox_url}",
                  file=sys.stderr)
        for notice in getattr(runtime, "notices", None) or []:
            print(f"fal-persona: {notice}", file=sys.stderr)
        calls: dict[str, dict[str, Any]] = {}
        errors: list[str] = []
        answer = ""
        async for event in runtime.runner.run_turn(args.text, make_approver(args)):
            if isinstance(event, ToolStart):
                calls[event.call_id] = {"name": event.name, "args": event.args}
            elif isinstance(event, ToolEnd):
                entry = calls.setdefault(event.call_id, {"name": event.name, "args": {}})
                entry["error" if event.error else "result"] = event.content
                if event.artifact is not None:
                    entry["artifact"] = _jsonable(event.artifact)
            elif isinstance(event, ErrorEvent) and event.kind != "transcript":
                errors.append(event.message)
            elif isinstance(event, TurnEnd):
                answer = event.answer
        runner = runtime.runner
        if args.json:
            out = {"answer": answer, "tool_calls": list(calls.values()), "session_id": runner.session_id,
                   "spent_usd": runner.spent_usd, "persona": runner.persona.name, "mode": runtime.mode,
                   "model": runtime.model_name}
            if errors:
                out["error"] = errors[0]
            print(json.dumps(out, indent=2, default=str))
        elif answer:
            print(answer)
        if errors:
            raise CliError(errors[0].splitlines()[0])
        return 0
    finally:
        await runtime.aclose()


def run(args: Any) -> int:
    """Entry point for `fal-persona ask`."""
    return asyncio.run(_run(args))
