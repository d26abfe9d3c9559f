"""Files attached to the next request: `/attach PATH`, a pasted or dropped path, chips above
the prompt, and how they travel with the request.

They travel as text, which works for both kinds of model and keeps the transcript honest
(what the model read is what was recorded):
- the offline planner gets its own grammar: `submit X ... image_url=./a.png` (or
  `audio_url=`/`video_url=` by the file's kind; several of one kind as `image_urls=[...]`),
  and `animate ./a.png`, `upscale ./a.png`, `edit ./a.png with ...` for those verbs;
- an LLM gets a line `Attached files: ./a.png (image, 1.2 MB)` under the request, so it can
  put the path into the endpoint's media field.
Either way the guard uploads a local path in a media field before the submit.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from textual import on
from textual.containers import Horizontal
from textual.widgets import Button, Static

from agent.media import MediaKind, kind_of
from tools.errors import AppError

PATH_VERBS = ("edit", "upscale", "animate")  # planner verbs that take the file right after them
SUBMIT_VERBS = ("submit", "generate") + PATH_VERBS
MAX_CANDIDATES = 12


class AttachmentError(AppError, ValueError):
    """A file that cannot be attached (missing, a folder, unreadable); the message says which."""


@dataclass(frozen=True)
class Attachment:
    """One attached file: `path` as the request will name it, and what it is."""

    path: str
    size: int
    kind: MediaKind

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path

    @property
    def field(self) -> str | None:
        """The media field a file of this kind goes into (`image_url`...), None for others."""
        return f"{self.kind}_url" if self.kind != "file" else None

    def describe(self) -> str:
        """`./a.png (image, 1.2 MB)`."""
        return f"{self.path} ({self.kind}, {human_size(self.size)})"


def human_size(n: int) -> str:
    """`812 B`, `1.2 KB`, `3.4 MB`, `1.1 GB` (powers of 1024)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def clean_path(raw: str) -> str:
    """A typed, pasted or dropped path as a plain path: quotes, `file://` and `~` undone."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    if text.startswith("file://"):
        text = unquote(urlparse(text).path)
    return os.path.expanduser(text)


def attach(raw: str) -> Attachment:
    """Check that `raw` names a readable file and describe it; AttachmentError otherwise."""
    path = clean_path(raw)
    if not path:
        raise AttachmentError("which file? usage: /attach PATH")
    target = Path(path)
    if not target.exists():
        raise AttachmentError(f"no such file: {path}; nothing attached")
    if target.is_dir():
        raise AttachmentError(f"{path} is a folder; attach a file")
    try:
        with target.open("rb"):
            size = target.stat().st_size
    except OSError as exc:
        raise AttachmentError(f"cannot read {path}: {exc.strerror or exc}") from exc
    ctype = mimetypes.guess_type(target.name)[0] or ""
    if not target.is_absolute() and not path.startswith(("./", "../")):
        path = "./" + path  # `./a/b.png`: never read as an endpoint id like `a/b.png`
    return Attachment(path, size, kind_of(ctype, target.name))


def pasted_paths(text: str) -> list[str] | None:
    """The paths in a paste when it is nothing but paths of existing files (a terminal's
    drag-and-drop pastes them, quoted or backslash-escaped); None for any other paste."""
    stripped = text.strip()
    if not stripped or len(stripped) > 8192:
        return None
    if "\n" in stripped:  # one path a line
        paths = [clean_path(line) for line in stripped.splitlines() if line.strip()]
        return paths if all(Path(p).is_file() for p in paths) else None
    whole = clean_path(stripped)
    if Path(whole).is_file():
        return [whole]  # one path, spaces and all
    try:
        parts = shlex.split(stripped)
    except ValueError:
        return None
    paths = [clean_path(p) for p in parts]
    return paths if paths and all(Path(p).is_file() for p in paths) else None


# -- completion -------------------------------------------------------------------------------
def complete_path(prefix: str, cwd: Path | None = None) -> tuple[str, list[str]]:
    """Complete a partly typed path: (the completed text, the candidates when several match).

    The text keeps what was typed before the last `/` (so `~/` stays `~/`); a folder that is
    the only match gets its `/`, so Tab again goes inside it."""
    typed_dir, sep, stem = prefix.rpartition("/")
    typed_dir += sep
    folder = Path(os.path.expanduser(typed_dir or "."))
    if not folder.is_absolute() and cwd is not None:
        folder = cwd / folder
    try:
        names = sorted(e.name for e in os.scandir(folder)
                       if e.name.startswith(stem) and (stem.startswith(".") or not e.name.startswith(".")))
    except OSError:
        return prefix, []
    if not names:
        return prefix, []
    if len(names) == 1:
        name = names[0]
        slash = "/" if (folder / name).is_dir() else ""
        return typed_dir + name + slash, []
    common = os.path.commonprefix(names)
    shown = [n + ("/" if (folder / n).is_dir() else "") for n in names[:MAX_CANDIDATES]]
    if len(names) > MAX_CANDIDATES:
        shown.append(f"… {len(names) - MAX_CANDIDATES} more")
    return typed_dir + common, shown


# -- the request ------------------------------------------------------------------------------
def _quoted(path: str) -> str:
    """A key=value value the planner reads back whole."""
    if not re.search(r"[\s\"']", path):
        return path
    return f"'{path}'" if '"' in path else f'"{path}"'


def _pairs(files: list[Attachment]) -> list[str]:
    """`image_url=./a.png`, or `image_urls=[...]` for several of one kind."""
    by_field: dict[str, list[str]] = {}
    for f in files:
        if f.field is not None:
            by_field.setdefault(f.field, []).append(f.path)
    out = []
    for name, paths in by_field.items():
        if len(paths) == 1:
            out.append(f"{name}={_quoted(paths[0])}")
        else:
            out.append(f"{name}s={json.dumps(paths, separators=(',', ':'))}")
    return out


def planner_text(text: str, files: list[Attachment]) -> str:
    """The request in the offline planner's grammar, the files put into the step that makes
    something (the first one, when none does)."""
    from agent.planner.grammar import split_steps

    steps = split_steps(text) or [text]
    at = next((i for i, s in enumerate(steps)
               if re.search(rf"\b(?:{'|'.join(SUBMIT_VERBS)})\b", s, re.IGNORECASE)), 0)
    step = steps[at]
    rest = [f for f in files if f.path not in step]  # a path typed in the request already stays
    verb = re.match(rf"^(.*?\b(?:{'|'.join(PATH_VERBS)}))\b(.*)$", step, re.IGNORECASE | re.DOTALL)
    if verb and rest and len(rest) == len(files):
        first = next((f for f in rest if f.kind == "image"), rest[0])
        rest.remove(first)
        step = f"{verb.group(1)} {_quoted(first.path)}{verb.group(2)}"
    steps[at] = " ".join([step, *_pairs(rest)])
    return " then ".join(steps)


def llm_text(text: str, files: list[Attachment]) -> str:
    """The request with a line naming the files, for a model that reads free language."""
    listed = ", ".join(f.describe() for f in files)
    return (f"{text}\n\nAttached files: {listed} (local paths: put each into the endpoint's "
            "media field, e.g. image_url; they are uploaded before the submit)")


def request_text(text: str, files: list[Attachment], *, offline: bool) -> str:
    """What the model is sent for `text` with `files` attached (`text` alone without files)."""
    if not files:
        return text
    return planner_text(text, files) if offline else llm_text(text, files)


def attached_line(files: list[Attachment]) -> str:
    """The line under the user's message in the chat: `attached: a.png (image, 1.2 KB) · ...`."""
    return "attached: " + " · ".join(f"{f.name} ({f.kind}, {human_size(f.size)})" for f in files)


# -- the chips --------------------------------------------------------------------------------
class AttachmentChip(Button):
    """One attached file above the prompt; a click takes it off."""

    def __init__(self, item: Attachment) -> None:
        super().__init__(f"{item.name} · {human_size(item.size)} ✕", compact=True,
                         classes="chip", tooltip=f"{item.describe()}: click to remove")
        self.item = item


class AttachmentBar(Horizontal):
    """The files attached to the next request, as chips; hidden while there are none."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.files: list[Attachment] = []

    def compose(self):
        yield Static("attached:", classes="chips-label")

    def on_mount(self) -> None:
        self.display = False

    async def add(self, item: Attachment) -> bool:
        """Add a chip; False when that file is attached already."""
        if any(f.path == item.path for f in self.files):
            return False
        self.files.append(item)
        await self.mount(AttachmentChip(item))
        self.display = True
        return True

    async def remove_file(self, item: Attachment) -> None:
        """Take one file off."""
        self.files = [f for f in self.files if f is not item]
        for chip in self.query(AttachmentChip):
            if chip.item is item:
                await chip.remove()
        self.display = bool(self.files)

    def find(self, which: str) -> Attachment | None:
        """The attached file `which` names: its number (1-based), name or path."""
        if which.isdigit() and 1 <= int(which) <= len(self.files):
            return self.files[int(which) - 1]
        cleaned = clean_path(which)
        return next((f for f in self.files if which in (f.name, f.path) or cleaned == f.path), None)

    async def take(self) -> list[Attachment]:
        """The attached files, and clear the chips (they go with the request being sent)."""
        files, self.files = self.files, []
        await self.query(AttachmentChip).remove()
        self.display = False
        return files

    @on(Button.Pressed, ".chip")
    async def _chip_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if isinstance(event.button, AttachmentChip):
            await self.remove_file(event.button.item)
            self.app.notify(f"detached {event.button.item.name}", timeout=2)
        focus_prompt = getattr(self.app, "focus_prompt", None)
        if callable(focus_prompt):
            focus_prompt()
