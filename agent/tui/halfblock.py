"""Images as coloured half-block characters, for terminals without graphics protocols.

Each cell shows two pixels: the upper one as the foreground of `▀`, the lower as its background.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style


class HalfBlockImage:
    """A Rich renderable of an image, `width` cells wide (height follows the aspect ratio)."""

    def __init__(self, image: Any, width: int = 40, max_height: int = 24) -> None:
        img = image.convert("RGB")
        w, h = img.size
        cols = max(1, min(width, w))
        rows = max(1, round(h * cols / w / 2))
        if rows > max_height:
            rows = max_height
            cols = max(1, round(w * rows * 2 / h))
        self.width, self.height = cols, rows
        self._pixels = img.resize((cols, rows * 2)).load()

    @classmethod
    def from_bytes(cls, data: bytes, width: int = 40, max_height: int = 24) -> HalfBlockImage:
        """Decode image bytes with Pillow (imported here: only needed when media arrives)."""
        from PIL import Image

        with Image.open(BytesIO(data)) as img:
            img.load()
            return cls(img, width, max_height)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        px = self._pixels
        for y in range(self.height):
            for x in range(self.width):
                top, bottom = px[x, 2 * y], px[x, 2 * y + 1]
                style = Style(color=Color.from_rgb(*top[:3]), bgcolor=Color.from_rgb(*bottom[:3]))
                yield Segment("▀", style)
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Any:
        from rich.measure import Measurement

        return Measurement(self.width, self.width)
