"""The fal.ai side of fal-persona: the async client (``tools.fal``), webhook verification
(``tools.webhooks``) and the LangChain tools built on them (``tools.catalog``).

Nothing in this package imports ``agent``. The names below load on first use, so
``import tools`` stays cheap (the TUI paints before LangChain or the client load).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.tools import BaseTool

    from tools.catalog import OPTIONAL_TOOLS, TOOL_KINDS, build_fal_tool
    from tools.fal import (
        ArgumentsInvalid,
        FalClient,
        FalConfig,
        FalError,
        InputField,
        InputSchema,
        SchemaUnavailable,
        UploadedFile,
        UploadFileError,
    )

__all__ = [
    "OPTIONAL_TOOLS", "TOOL_KINDS", "ArgumentsInvalid", "FalClient", "FalConfig", "FalError",
    "InputField", "InputSchema", "SchemaUnavailable", "UploadFileError", "UploadedFile",
    "build_fal_tool", "build_fal_tools",
]
_LAZY = {"OPTIONAL_TOOLS": "tools.catalog", "TOOL_KINDS": "tools.catalog",
         "build_fal_tool": "tools.catalog"}


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "build_fal_tools":
        return getattr(import_module(_LAZY.get(name, "tools.fal")), name)
    raise AttributeError(f"module 'tools' has no attribute {name!r}")


def build_fal_tools(config: Any = None, client: Any = None, *,
                    include_upload: bool = False) -> list[BaseTool]:
    """Return the nine fal.ai tools (and ``upload_file`` with `include_upload`), configured
    from the environment unless told otherwise."""
    from tools.catalog import build_fal_tools as _build

    return _build(config=config, client=client, include_upload=include_upload)
