"""The session core: what turns one person's request into tool calls, and keeps it honest.

- `runtime`: builds one session (settings, persona, tools, model, transcript, sandbox) and
  switches personas inside it.
- `runner`: drives the LangChain agent for a turn and streams its `events`.
- `models`: the chat-model factory (OpenAI-compatible server, or the offline planner).
- `middleware`, `guard`, `gate`: scope, budget and approval around every tool call.
- `callbacks`, `turnlog`: what the transcript records of a turn.
- `follow`: follows one fal request to its outcome.
- (what each tool is, read, spend, destructive or upload, lives in `tools.registry`.)
"""

__all__: list[str] = []  # a namespace: its modules are imported by name
