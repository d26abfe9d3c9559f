"""`fal-persona` with no subcommand: the chat TUI."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Open the chat app with the settings `agent.cli.main` resolved (environment, `.env`,
    flags); its exit status is the app's return code."""
    from agent.tui.app import FalPersonaApp
    from agent.tui.graphics import preload_graphics

    preload_graphics()
    resume = getattr(args, "resume", None) or (True if getattr(args, "continue_", False) else None)
    app = FalPersonaApp(settings=getattr(args, "settings", None),
                        persona=getattr(args, "persona", None), user=getattr(args, "user", None),
                        no_log=bool(getattr(args, "no_log", False)), listen=getattr(args, "listen", None),
                        resume=resume)
    app.run()
    return int(app.return_code or 0)
