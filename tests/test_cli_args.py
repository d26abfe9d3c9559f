from __future__ import annotations

import pytest

from agent.cli import build_parser


@pytest.mark.parametrize("argv", [
    ["--user", "ana", "--persona", "ops", "--no-log", "--no-listen", "ask", "hi"],
    ["ask", "--user", "ana", "--persona", "ops", "--no-log", "--no-listen", "hi"],
    ["--user", "ana", "ask", "--persona", "ops", "--no-log", "--no-listen", "hi"],
])
def test_shared_flags_work_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert (args.user, args.persona, args.no_log, args.listen) == ("ana", "ops", True, False)
    assert args.command == "ask" and args.text == "hi"


def test_defaults_without_flags():
    args = build_parser().parse_args(["logs", "list"])
    assert (args.user, args.persona, args.no_log, args.listen) == (None, None, False, None)
    assert args.command == "logs" and args.logs_command == "list"
