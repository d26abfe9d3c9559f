"""Text for the Markdown widget that shows exactly what was written (pure functions).

The model's answers are Markdown, but they also carry literal text: `<placeholders>` (which
Markdown would take for HTML and drop), and JSON (whose `*`, `_` and line breaks Markdown
would reinterpret). `as_markdown` keeps code as it is, puts JSON in fenced code blocks,
escapes `<` elsewhere, and keeps single line breaks. Indented lines laid out in columns (a
help text) go in a plain code block: Markdown, and Textual's renderer, fold runs of spaces.
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_ALIGNED = re.compile(r"^ {2,}\S.*?\S {2,}\S")


def hard_breaks(text: str) -> str:
    """Keep single line breaks (Markdown would fold them into one paragraph)."""
    return text.replace("\n", "  \n")


def _aligned(line: str) -> bool:
    """An indented line with a gap of spaces inside (a column), and not a list item."""
    return bool(_ALIGNED.match(line)) and not _LIST_ITEM.match(line)


def _escape_prose(text: str) -> str:
    """`<` escaped outside inline code spans, so no word is taken for an HTML tag."""
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(text[last:match.start()].replace("<", "\\<"))
        out.append(match.group(0))
        last = match.end()
    out.append(text[last:].replace("<", "\\<"))
    return "".join(out)


def _json_block(lines: list[str], start: int) -> int:
    """The end (exclusive) of a JSON object/array starting at line `start`, or -1."""
    head = lines[start].lstrip()
    if not head.startswith(("{", "[")):
        return -1
    decoder = json.JSONDecoder()
    for end in range(start + 1, min(len(lines), start + 400) + 1):
        chunk = "\n".join(lines[start:end]).strip()
        try:
            value, used = decoder.raw_decode(chunk)
        except ValueError:
            continue
        if used == len(chunk) and isinstance(value, (dict, list)) and value:
            return end
        return -1
    return -1


def as_markdown(text: str) -> str:
    """`text` ready for the Markdown widget, reading as written."""
    lines = text.split("\n")
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            out.append(hard_breaks(_escape_prose("\n".join(prose))))
            prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line.lstrip())
        if fence:  # a code block: verbatim up to its closing fence
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(fence.group(1)):
                j += 1
            out.append("\n".join(lines[i:j + 1]))
            i = j + 1
            continue
        if _aligned(line):  # columns: verbatim in a plain block, as a terminal shows them
            flush()
            j = i
            while j < len(lines) and _aligned(lines[j]):
                j += 1
            block = "\n".join(lines[i:j])
            marks = "~~~" if "```" in block else "```"
            out.append(f"{marks}text\n{block}\n{marks}")
            i = j
            continue
        end = _json_block(lines, i)
        if end > 0:
            flush()
            out.append("```json\n" + "\n".join(lines[i:end]).strip("\n") + "\n```")
            i = end
            continue
        prose.append(line)
        i += 1
    flush()
    return "\n".join(part if part.endswith("\n") else part + "\n" for part in out).rstrip("\n")
