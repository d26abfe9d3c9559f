"""Whether to use a terminal graphics protocol (via textual-image) for image previews.

textual-image must query the terminal before Textual takes it over, and the query costs a
round trip, so it runs only where graphics are likely (kitty, WezTerm, iTerm2, ghostty, foot,
konsole) or when the config/env asks for it; everywhere else previews use half-blocks.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

GRAPHICS_TERMS = ("kitty", "wezterm", "iterm", "ghostty", "foot", "konsole", "mlterm")


def wants_graphics(env: dict[str, str] | None = None) -> bool:
    """True when the terminal probably supports sixel or the kitty graphics protocol."""
    env = dict(os.environ) if env is None else env
    forced = env.get("FAL_PERSONA_IMAGES", "").lower()
    if forced in ("halfblock", "half-block", "off", "0"):
        return False
    if forced in ("graphics", "on", "1"):
        return True
    if "TMUX" in env:  # tmux swallows the protocols unless specially configured
        return False
    names = " ".join(env.get(k, "") for k in ("TERM", "TERM_PROGRAM", "LC_TERMINAL")).lower()
    return any(t in names for t in GRAPHICS_TERMS) or "KITTY_WINDOW_ID" in env


def preload_graphics() -> bool:
    """Import textual-image (which probes the terminal) when graphics are wanted; never raises."""
    if not (sys.stdout.isatty() and wants_graphics()):
        return False
    try:
        import textual_image.widget  # noqa: F401 - imported to probe that it loads
    except Exception:  # a probe failure just means half-blocks
        log.info("terminal graphics unavailable, using half-blocks", exc_info=True)
        return False
    return True
