"""A small stdio MCP server for the tests, written with the `mcp` SDK's FastMCP.

`save_note(text)` appends a line to the file named by NOTES_FILE; `read_notes()` reads it back;
`crash()` ends the process at once (exit status 3), as a server that dies mid-call would.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

server = FastMCP("notes")


def _file() -> Path:
    return Path(os.environ["NOTES_FILE"])


@server.tool(description="Save one note (a line of text) to the notes file.")
def save_note(text: str) -> str:
    with _file().open("a", encoding="utf-8") as fh:
        fh.write(text.replace("\n", " ") + "\n")
    return f"saved note {len(_file().read_text(encoding='utf-8').splitlines())}"


@server.tool(description="Read every saved note.", annotations=ToolAnnotations(readOnlyHint=True))
def read_notes() -> str:
    return _file().read_text(encoding="utf-8") if _file().exists() else ""


@server.tool(description="Refuse: always reports an error.")
def refuse(why: str = "no") -> str:
    raise ValueError(f"refused: {why}")


@server.tool(description="End the server process at once.")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    if os.environ.get("NOTES_PID_FILE"):
        Path(os.environ["NOTES_PID_FILE"]).write_text(str(os.getpid()), encoding="utf-8")
    server.run("stdio")
