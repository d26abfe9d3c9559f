"""The offline planner: a deterministic chat model that turns a command grammar into tool calls.

See `agent.planner.grammar` for the grammar and README's "Offline planner" section for limits.
"""

from __future__ import annotations

from agent.planner.grammar import HELP_TEXT, GrammarError, Step, parse
from agent.planner.model import OfflinePlanner

__all__ = ["HELP_TEXT", "GrammarError", "OfflinePlanner", "Step", "parse"]
