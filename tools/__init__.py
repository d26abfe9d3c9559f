"""The fal.ai side of fal-persona: the async client (``tools.fal``), webhook verification
(``tools.webhooks``) and the LangChain tools built on them (``tools.catalog``).

Nothing in this package imports ``agent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.tools import BaseTool

__all__ = ["build_fal_tools"]


def build_fal_tools(config: Any = None, client: Any = None) -> "list[BaseTool]":
    """Return the nine fal.ai tools, configured from the environment unless told otherwise."""
    # Imported lazily so `import tools` stays cheap (the TUI paints before LangChain loads).
    from tools.catalog import build_fal_tools as _build

    return _build(config=config, client=client)
