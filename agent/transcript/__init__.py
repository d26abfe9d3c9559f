"""The transcript: every prompt, model call and tool call, per user and persona, in SQLite.

- `store`: `TranscriptStore`, the one writer and reader.
- `sql`: the batched writer behind it.
- `migrations`: the schema and its upgrades.
- `render`: exports (JSONL, Markdown) and the text views of rows.
"""
from agent.transcript.store import TranscriptStore

__all__ = ["TranscriptStore"]
