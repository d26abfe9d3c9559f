"""Text for the Markdown widget that shows exactly what was written (pure functions).

The model's answers are Markdown, but they also carry literal text: `<placeholders>` (which
Markdown would take for HTML and drop), and JSON (whose `*`, `_` and line breaks Markdown
would reinterpret). `as_markdown` keeps code as it is, puts JSON in fenced code blocks,
escapes `<` elsewhere, and keeps single line breaks and runs of spaces (aligned columns,
indented lines that are not list items).
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_SPACES = re.compile(r"(?<=\S)( {2,})(?=\S)")
NBSP = "\u00a0"


def hard_breaks(text: str) -> str:
    """Keep single line breaks (Markdown would fold them into one paragraph)."""
    return text.replace("\n", "  \n")


def _keep_indent(line: str) -> str:
    """The indent of a line that is not a list item, as no-break spaces (Markdown drops it)."""
    indent = len(line) - len(line.lstrip(" "))
    if indent and line.strip() and not _LIST_ITEM.match(line):
        return NBSP * indent + line[indent:]
    return line


def _prose(text: str) -> str:
    """Text outside code: `<` escaped, runs of spaces kept (Markdown folds them into one,
    and a help text loses its columns)."""
    return _SPACES.sub(lambda m: NBSP * len(m.group(1)), text.replace("<", "\\<"))


def _escape_prose(text: str) -> str:
    """`<` escaped outside inline code spans, so no word is taken for an HTML tag; spaces
    kept there too. Code spans stay as they are."""
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_prose(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_prose(text[last:]))
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
            kept = "\n".join(_keep_indent(line) for line in prose)
            out.append(hard_breaks(_escape_prose(kept)))
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
