"""Inline media: a preview (graphics protocol or half-blocks) with Save and Open buttons."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from agent.media import MediaError, MediaRef

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 48


def graphics_image_class() -> Any:
    """textual-image's widget when the app was started with graphics support, else None."""
    import sys

    module = sys.modules.get("textual_image.widget")
    return getattr(module, "Image", None) if module else None


class MediaPreview(Vertical):
    """One media file from a result. Downloads in a worker; never blocks the chat."""

    def __init__(self, ref: MediaRef, *, stem: str = "") -> None:
        super().__init__(classes="media")
        self.ref, self.stem = ref, stem
        self.data: bytes | None = None
        self.saved_path: Path | None = None
        self.shown = False  # the preview (or why there is none) is on screen

    def compose(self):
        kind = "image" if self.ref.is_image else (self.ref.content_type or "file")
        size = f" {self.ref.width}×{self.ref.height}" if self.ref.width and self.ref.height else ""
        label = self.ref.url if not self.ref.url.startswith("data:") else "inline data"
        yield Static(f"🖼 {kind}{size} · {label[:80]}", markup=False, classes="media-title")
        yield Static("loading preview…", classes="media-body")
        with Horizontal(classes="media-actions"):
            yield Button("Save", id="save-media", compact=True)
            yield Button("Open", id="open-media", compact=True)

    def on_mount(self) -> None:
        if self.ref.is_image:
            self.load()
        else:
            self.query_one(".media-body", Static).update("(no preview for this type)")

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
        except MediaError as exc:
            body.update(f"preview unavailable: {exc}")
        except Exception as exc:  # a corrupt image must not take the chat down
            log.warning("preview of %s failed", self.ref.url[:200], exc_info=True)
            body.update(f"preview unavailable: {type(exc).__name__}")
        self.shown = True

    async def _show(self, data: bytes) -> None:
        body = self.query_one(".media-body", Static)
        graphics = graphics_image_class()
        if graphics is not None:
            from io import BytesIO

            from PIL import Image as PILImage

            widget = graphics(PILImage.open(BytesIO(data)), classes="media-graphic")
            await self.mount(widget, after=body)
            await body.remove()
            return
        from agent.tui.halfblock import HalfBlockImage

        body.update(HalfBlockImage.from_bytes(data, width=PREVIEW_WIDTH))

    async def save(self) -> Path:
        """Save to the media folder (reusing downloaded bytes)."""
        from agent.media import _extension, save_bytes, save_media
        from agent.locations import media_dir

        if self.data is not None:
            ext = _extension(self.ref.url, self.ref.content_type)
            self.saved_path = save_bytes(self.data, media_dir(), self.stem or "media", ext)
        else:
            self.saved_path = await save_media(self.ref, stem=self.stem)
        return self.saved_path

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
