"""What a preview needs from video and audio bytes, decoded without a media framework (pure).

Videos: the first frame and the length of an animated GIF or WebP (Pillow), the length of an
MP4/MOV from its `mvhd` box (no decoder here, so no frame). Audio: the length and a peak
envelope of a PCM WAV (the stdlib `wave` module), drawn as a strip of block characters.
"""

from __future__ import annotations

import io
import struct
import wave
from array import array
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

LEVELS = " ▁▂▃▄▅▆▇█"  # eighths of a cell, bottom up
MAX_SAMPLES = 400_000  # samples read for the envelope: a long file is subsampled, not read whole


@dataclass(frozen=True)
class VideoInfo:
    """A decoded video's first frame (a PIL image, or None without a decoder) and its length."""

    frame: Any
    duration: float | None
    frames: int | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class AudioInfo:
    """A WAV's length, format and peak envelope (0..1 per column)."""

    duration: float
    rate: int
    channels: int
    peaks: tuple[float, ...]


def format_duration(seconds: float | None) -> str:
    """`4.5 s`, `1:05`, `1:02:03`; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def decode_video(data: bytes) -> VideoInfo:
    """First frame and length of an animated GIF/WebP; for MP4/MOV the length alone.
    ValueError when the bytes are neither."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            frames = int(getattr(img, "n_frames", 1) or 1)
            total_ms = 0.0
            for index in range(frames):
                img.seek(index)
                total_ms += float(img.info.get("duration") or 0)
            img.seek(0)
            frame = img.convert("RGB")
            return VideoInfo(frame, total_ms / 1000 if total_ms > 0 else None, frames, *frame.size)
    except (UnidentifiedImageError, OSError, EOFError):
        pass
    duration = mp4_duration(data)
    if duration is None and data[4:8] != b"ftyp":
        raise ValueError("not a video format this preview knows (GIF, WebP, MP4/MOV)")
    return VideoInfo(None, duration)


def mp4_duration(data: bytes) -> float | None:
    """The movie length an MP4/MOV's `mvhd` box states, or None when there is none."""
    at = data.find(b"mvhd")
    if at < 4 or at + 32 > len(data):
        return None
    version = data[at + 4]
    try:
        if version == 1:
            timescale, length = struct.unpack(">IQ", data[at + 24:at + 36])
        else:
            timescale, length = struct.unpack(">II", data[at + 16:at + 24])
    except struct.error:
        return None
    return length / timescale if timescale else None


def decode_wav(data: bytes, columns: int = 48) -> AudioInfo:
    """Length and a `columns`-wide peak envelope of PCM WAV bytes; ValueError when not WAV."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            count = wav.getnframes()
            raw = wav.readframes(count)
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file: {exc}") from exc
    if rate <= 0:
        raise ValueError("the WAV file states no sample rate")
    return AudioInfo(count / rate, rate, channels, _peaks(_samples(raw, width), columns))


def _samples(raw: bytes, width: int) -> list[float]:
    """Sample magnitudes in 0..1 (every channel interleaved), subsampled to MAX_SAMPLES."""
    n = len(raw) // width if width else 0
    step = max(1, n // MAX_SAMPLES)
    if width == 1:  # 8-bit WAV is unsigned
        return [abs(raw[i] - 128) / 128 for i in range(0, n, step)]
    if width in (2, 4):
        values = array("h" if width == 2 else "i")
        values.frombytes(raw[:n * width])
        full = float(1 << (8 * width - 1))
        return [abs(values[i]) / full for i in range(0, n, step)]
    if width == 3:
        return [abs(int.from_bytes(raw[i * 3:i * 3 + 3], "little", signed=True)) / 8388608
                for i in range(0, n, step)]
    raise ValueError(f"a {8 * width}-bit WAV is not supported")


def _peaks(samples: list[float], columns: int) -> tuple[float, ...]:
    """The loudest sample of each of `columns` equal spans."""
    if not samples or columns <= 0:
        return ()
    peaks = []
    for col in range(columns):
        span = samples[col * len(samples) // columns:max(col * len(samples) // columns + 1,
                                                          (col + 1) * len(samples) // columns)]
        peaks.append(max(span) if span else 0.0)
    return tuple(peaks)


def waveform(peaks: tuple[float, ...], rows: int = 2, style: str = "green") -> Text:
    """The envelope as bars of block characters, `rows` high, one column a peak, scaled to
    the loudest column (so quiet speech still shows its shape); silence is a flat baseline."""
    loudest = max(peaks, default=0.0)
    steps = rows * 8
    levels = [max(1, round(p / loudest * steps)) if loudest > 0 else 1 for p in peaks]
    lines = []
    for row in range(rows - 1, -1, -1):  # top row first
        base = row * 8
        lines.append("".join(LEVELS[min(8, max(0, level - base))] for level in levels))
    return Text("\n".join(lines), style=style)


def narrowed(peaks: tuple[float, ...], columns: int) -> tuple[float, ...]:
    """`peaks` merged down to at most `columns` (each the loudest of the ones it covers)."""
    if len(peaks) <= columns or columns <= 0:
        return peaks
    return tuple(max(peaks[c * len(peaks) // columns:max(c * len(peaks) // columns + 1,
                                                           (c + 1) * len(peaks) // columns)])
                 for c in range(columns))


class Waveform:
    """A Rich renderable of an envelope that fits the width it is given (up to its own)."""

    def __init__(self, peaks: tuple[float, ...], rows: int = 2, style: str = "green") -> None:
        self.peaks, self.rows, self.style = peaks, rows, style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield waveform(narrowed(self.peaks, options.max_width), self.rows, self.style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = min(len(self.peaks), options.max_width)
        return Measurement(min(8, width), width)
