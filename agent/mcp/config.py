"""`[[mcp_servers]]` in a persona file: the MCP servers whose tools the persona may use.

    [[mcp_servers]]
    name = "notes"                        # the tools' prefix: notes_save_note
    command = "python"                    # stdio: a command to start ...
    args = ["notes_server.py"]
    env = { NOTES_DIR = "/tmp/notes" }    # ... with these variables (${VAR} taken from ours)
    tools = ["save_*"]                    # optional glob patterns: which of its tools (default all)
    approval = ["save_note"]              # optional patterns: which ones need a human's yes

    [[mcp_servers]]
    name = "tracker"
    url = "https://example.test/mcp"      # or streamable HTTP ...
    headers = { Authorization = "Bearer ${TRACKER_TOKEN}" }   # ... with these headers

Patterns match the server's own tool names (without the prefix). Pure data and validation
here: nothing starts until `agent.mcp.client` is asked to.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SERVER_NAME_RE = r"^[a-z][a-z0-9-]{0,23}$"


class McpServerSpec(BaseModel):
    """One MCP server a persona uses: a stdio command or a streamable-HTTP URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SERVER_NAME_RE)
    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    approval: list[str] = Field(default_factory=list)
    start_timeout_s: float = Field(default=20.0, gt=0, le=300)
    """Seconds to start the server and list its tools before it counts as failed."""
    call_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    """Seconds one call may take before it fails (the server stays up)."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("tools", "approval")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        blank = [p for p in value if not p.strip()]
        if blank:
            raise ValueError("patterns must not be blank")
        return [p.strip() for p in value]

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (stdio) or url (streamable HTTP), not both or neither")
        if self.url is not None and (self.args or self.env or self.cwd):
            raise ValueError("args, env and cwd go with command, not url")
        if self.command is not None and self.headers:
            raise ValueError("headers go with url, not command")
        return self

    @property
    def transport(self) -> str:
        """`stdio` or `http`."""
        return "stdio" if self.command is not None else "http"

    def prefixed(self, tool: str) -> str:
        """The name the persona sees: `<server>_<tool>`."""
        return f"{self.name}_{tool}"

    def wants(self, tool: str) -> bool:
        """Whether the server's `tool` is in this persona's scope."""
        return any(fnmatchcase(tool, p) for p in self.tools)

    def needs_approval(self, tool: str) -> bool:
        """Whether calling the server's `tool` needs a human's yes first."""
        return any(fnmatchcase(tool, p) for p in self.approval)


def unique_names(servers: list[McpServerSpec]) -> list[McpServerSpec]:
    """Reject two servers of one name (their tools would share a prefix)."""
    seen: set[str] = set()
    for spec in servers:
        if spec.name in seen:
            raise ValueError(f"two servers are named {spec.name!r}")
        seen.add(spec.name)
    return servers
