"""MCP both ways.

* ``agent.mcp.server``: ``fal-persona mcp`` serves a persona's fal.ai tools to any MCP client
  (stdio or streamable HTTP), every call passing the same guard as a chat's (scope, budget,
  approval) and landing in the transcript.
* ``agent.mcp.bridge``: that guard seam, free of any transport; ``agent.mcp.record``: the
  transcript written just after each reply; ``agent.mcp.stdio``: stdin/stdout on the loop;
  ``agent.mcp.auth``: the HTTP transport's token off loopback.
* ``agent.mcp.client``: the other way round, the MCP servers a persona file lists become tools
  of that persona (through ``langchain-mcp-adapters``), each server in a session of its own
  (``agent.mcp.connect``) that may fail or die without taking the chat with it;
  ``agent.mcp.attach`` starts them for a persona and switches them with it.

Nothing here is imported by the chat unless a persona lists MCP servers or ``fal-persona mcp``
runs, so neither the TUI's first paint nor ``ask`` pay for the SDK.
"""
