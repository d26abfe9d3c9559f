"""Inline results: media previews (graphics protocol or half-blocks) and text, each with Save
and Open buttons. Images show as they are, videos their first frame and length, audio a
waveform strip and its length (`agent.tui.mediainfo`), text results (speech-to-text) inline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from agent.media import MediaError, MediaRef

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 48
ICONS = {"image": "🖼", "video": "▶", "audio": "♪", "file": "□"}
TEXT_SHOWN_CHARS = 2000


def graphics_image_class() -> Any:
    """textual-image's widget when the app was started with graphics support, else None."""
    import sys

    module = sys.modules.get("textual_image.widget")
    return getattr(module, "Image", None) if module else None


class SavableResult(Vertical):
    """A result widget with Save and Open buttons (`#save-media`, `#open-media`): subclasses
    give `save()`; Open saves first unless it was saved already."""

    saved_path: Path | None = None

    async def save(self) -> Path:
        raise NotImplementedError

    @on(Button.Pressed, "#save-media")
    async def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await save_and_report(self, self.save, open_after=False)

    @on(Button.Pressed, "#open-media")
    async def _open_pressed(self, event: Button.Pressed) -> None:
        event.stop()

        async def saved() -> Path:
            return self.saved_path or await self.save()

        await save_and_report(self, saved, open_after=True)


class MediaPreview(SavableResult):
    """One media file from a result. Downloads in a worker; never blocks the chat."""

    def __init__(self, ref: MediaRef, *, stem: str = "") -> None:
        super().__init__(classes="media")
        self.ref, self.stem = ref, stem
        self.data: bytes | None = None
        self.saved_path: Path | None = None
        self.shown = False  # the preview (or why there is none) is on screen

    def compose(self):
        yield Static(self._title(), markup=False, classes="media-title")
        yield Static("loading preview…", classes="media-body")
        with Horizontal(classes="media-actions"):
            yield Button("Save", id="save-media", compact=True)
            yield Button("Open", id="open-media", compact=True)

    def _title(self, duration: float | None = None, size: tuple[int | None, int | None] = (None, None)) -> str:
        """`▶ video 256×256 · 3.0 s · <url>`: what it is, as far as it is known yet."""
        from agent.tui.mediainfo import format_duration

        kind = self.ref.kind
        named = kind if kind != "file" else (self.ref.content_type or "file")
        width, height = size if size[0] else (self.ref.width, self.ref.height)
        dims = f" {width}×{height}" if width and height else ""
        length = format_duration(duration if duration is not None else self.ref.duration)
        label = self.ref.url if not self.ref.url.startswith("data:") else "inline data"
        return f"{ICONS[kind]} {named}{dims}" + (f" · {length}" if length else "") + f" · {label[:80]}"

    def on_mount(self) -> None:
        if self.ref.kind != "file":
            self.load()
        else:
            self.query_one(".media-body", Static).update("(no preview for this type)")
            self.shown = True

    @work(exclusive=True, group="media-load")
    async def load(self) -> None:
        """Download and render the preview."""
        from agent.media import download

        body = self.query_one(".media-body", Static)
        from agent import media_cache

        try:
            self.data = await asyncio.to_thread(media_cache.cached, self.ref.url)
            if self.data is None:
                self.data, _ = await download(self.ref.url, timeout_s=30)
                await asyncio.to_thread(media_cache.keep, self.ref.url, self.data)
            await self._show(self.data)
        except (MediaError, ValueError) as exc:
            body.update(f"preview unavailable: {exc}")
        except Exception as exc:  # a corrupt file must not take the chat down
            log.warning("preview of %s failed", self.ref.url[:200], exc_info=True)
            body.update(f"preview unavailable: {type(exc).__name__}")
        self.shown = True

    async def _show(self, data: bytes) -> None:
        kind = self.ref.kind
        if kind == "video":
            await self._show_video(data)
        elif kind == "audio":
            self._show_audio(data)
        else:
            from PIL import Image as PILImage

            with PILImage.open(BytesIO(data)) as img:
                img.load()
                await self._show_picture(img.copy())

    async def _show_picture(self, picture: Any, caption: str = "") -> None:
        """A PIL image in the body: through the graphics protocol when on, else half-blocks."""
        body = self.query_one(".media-body", Static)
        graphics = graphics_image_class()
        if graphics is not None:
            widget = graphics(picture, classes="media-graphic")
            await self.mount(widget, after=body)
            if caption:
                body.update(caption)
                self.move_child(body, after=widget)
            else:
                await body.remove()
            return
        from rich.console import Group
        from rich.text import Text

        from agent.tui.halfblock import HalfBlockImage

        image = HalfBlockImage(picture, width=PREVIEW_WIDTH)
        body.update(Group(image, Text(caption, style="dim")) if caption else image)

    async def _show_video(self, data: bytes) -> None:
        """The first frame with the length; a length-only card when there is no decoder."""
        from agent.tui.mediainfo import decode_video, format_duration

        info = decode_video(data)
        duration = info.duration if info.duration is not None else self.ref.duration
        self.query_one(".media-title", Static).update(self._title(duration, (info.width, info.height)))
        length = format_duration(duration) or "length unknown"
        if info.frame is None:
            self.query_one(".media-body", Static).update(
                f"▶ {length} · {self.ref.content_type or 'video'}: no decoder here for a frame; "
                "Open plays it in the system player")
            return
        frames = f"{info.frames} frames · " if info.frames and info.frames > 1 else ""
        await self._show_picture(info.frame, f"▶ first frame · {frames}{length}")

    def _show_audio(self, data: bytes) -> None:
        """A waveform strip with the length (WAV); other formats: the length the result states."""
        from rich.console import Group
        from rich.text import Text

        from agent.tui.mediainfo import Waveform, decode_wav, format_duration

        body = self.query_one(".media-body", Static)
        try:
            info = decode_wav(data, columns=PREVIEW_WIDTH)
        except ValueError:
            length = format_duration(self.ref.duration) or "length unknown"
            body.update(f"♪ {length} · {self.ref.content_type or 'audio'}: the waveform is drawn "
                        "for WAV only; Open plays it")
            return
        self.query_one(".media-title", Static).update(self._title(info.duration))
        channels = {1: "mono", 2: "stereo"}.get(info.channels, f"{info.channels} channels")
        caption = f"♪ {format_duration(info.duration)} · {info.rate / 1000:g} kHz {channels}"
        body.update(Group(Waveform(info.peaks), Text(caption, style="dim")))

    async def save(self) -> Path:
        """Save to the media folder (reusing downloaded bytes)."""
        from agent.locations import media_dir
        from agent.media import _extension, save_bytes, save_media

        if self.data is not None:
            ext = _extension(self.ref.url, self.ref.content_type)
            self.saved_path = save_bytes(self.data, media_dir(), self.stem or "media", ext)
        else:
            self.saved_path = await save_media(self.ref, stem=self.stem)
        return self.saved_path


async def save_and_report(widget: Any, save: Callable[[], Awaitable[Path]], *, open_after: bool) -> None:
    """Save (and open, if asked) from a button, and say in a notification how it went."""
    from agent.media import open_in_viewer

    # The keyboard goes back to the prompt: what is typed next is a request, not another press.
    focus_prompt = getattr(widget.app, "focus_prompt", None)
    if callable(focus_prompt):
        focus_prompt()
    try:
        path = await save()
    except (MediaError, OSError) as exc:
        widget.app.notify(f"could not {'open' if open_after else 'save'}: {exc}", severity="error")
        return
    if open_after:
        problem = open_in_viewer(path)
        widget.app.notify(problem or f"opened {path.name}", severity="warning" if problem else "information")
    else:
        widget.app.notify(f"saved to {path}")


class TextResult(SavableResult):
    """A result that is text (speech-to-text's transcript, an LLM endpoint's output), shown
    inline; Save writes it to a `.txt` file in the media folder, Open saves and opens that."""

    def __init__(self, text: str, *, stem: str = "") -> None:
        super().__init__(classes="media text-result")
        self.text, self.stem = text, stem
        self.saved_path: Path | None = None
        self.shown = True

    def compose(self):
        words = len(self.text.split())
        yield Static(f"✎ text · {words} word{'s' if words != 1 else ''} · {len(self.text):,} characters",
                     markup=False, classes="media-title")
        shown = self.text if len(self.text) <= TEXT_SHOWN_CHARS else (
            self.text[:TEXT_SHOWN_CHARS] + "\n… (Save keeps all of it)")
        yield Static(shown, markup=False, classes="media-body text-body")
        with Horizontal(classes="media-actions"):
            yield Button("Save", id="save-media", compact=True)
            yield Button("Open", id="open-media", compact=True)

    async def save(self) -> Path:
        """Write the text to a fresh `.txt` in the media folder."""
        from agent.locations import media_dir
        from agent.media import save_bytes

        self.saved_path = await asyncio.to_thread(save_bytes, self.text.encode("utf-8"), media_dir(),
                                                  self.stem or "text", ".txt")
        return self.saved_path


def result_widgets(result: Any, endpoint: str, request_id: str, limit: int = 4) -> list[Vertical]:
    """The chat widgets for one result: a preview per media file (at most `limit`), else its
    text inline when it is a text result; [] when it holds neither."""
    from agent.media import find_media, text_result

    base = f"{(endpoint or 'job').replace('/', '-')}-{request_id[:8]}"
    refs = find_media(result, limit=limit)
    if refs:
        return [MediaPreview(ref, stem=base + (f"-{i + 1}" if i else "")) for i, ref in enumerate(refs)]
    text = text_result(result)
    return [TextResult(text, stem=base)] if text is not None else []
