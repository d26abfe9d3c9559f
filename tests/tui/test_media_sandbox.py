"""The TUI on the real runtime (offline planner, guard, uploads) against the sandbox, end to
end: an attached photo animated into a video whose first frame is the photo; speech made,
saved, attached again and transcribed back to its words, shown inline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.locations import media_dir
from agent.tui.app import FalPersonaApp
from agent.tui.keys import DEFAULT_KEYS
from agent.tui.media_view import MediaPreview, TextResult
from agent.tui.mediainfo import decode_video
from agent.tui.screens import ApprovalScreen
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread
from tests.tui.conftest import send, wait_for

Image = pytest.importorskip("PIL.Image")
SPOKEN = "the cat sat on the mat"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    """A sandbox at 50x speed, and the environment pointing the app at it as at fal.ai."""
    sb = start_in_thread(config=SandboxConfig(speed=50.0, uploads_dir=tmp_path / "sandbox-files"))
    monkeypatch.setenv("FAL_KEY", "test-id:test-secret")
    for name, path in (("FAL_QUEUE_BASE_URL", ""), ("FAL_API_BASE_URL", "/v1"),
                       ("FAL_JWKS_URL", "/.well-known/jwks.json"), ("FAL_REST_BASE_URL", ""),
                       ("FAL_CDN_BASE_URL", "")):
        monkeypatch.setenv(name, sb.url + path)
    monkeypatch.setenv("FAL_PERSONA_LISTEN", "0")
    try:
        yield sb
    finally:
        sb.stop()


def _photo(path: Path) -> Path:
    """Diagonal bands: structure a first frame can be compared against."""
    im = Image.new("RGB", (96, 64))
    im.putdata([(((x + 2 * y) * 7) % 256, 40, 255 - ((x + 2 * y) * 7) % 256) for y in range(64) for x in range(96)])
    im.save(path)
    return path


def _close(a, b) -> float:
    """Mean absolute difference of two pictures in grey at `b`'s size (0 = the same)."""
    ga, gb = a.convert("L").resize(b.size), b.convert("L")
    return sum(abs(p - q) for p, q in zip(ga.getdata(), gb.getdata())) / (b.width * b.height)


async def _approve(pilot, app, mention: str | None = None) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), timeout=20, what="approval")
    if mention is not None:
        shown = " ".join(str(getattr(w, "content", "")) for w in app.screen.query("Static"))
        assert mention in shown
    await pilot.click("#approve")


async def _press_save(pilot, widget) -> Path:
    before = set(media_dir().glob("*")) if media_dir().exists() else set()
    widget.query_one("#save-media").press()
    await wait_for(pilot, lambda: media_dir().exists() and set(media_dir().glob("*")) - before, what="saved file")
    (saved,) = set(media_dir().glob("*")) - before
    return saved


async def test_attach_animate_speak_and_transcribe_against_the_sandbox(sandbox, tmp_path):
    photo = _photo(tmp_path / "photo.png")
    app = FalPersonaApp(keys=dict(DEFAULT_KEYS), history_path=tmp_path / "history.txt")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready.is_set(), timeout=60, what="runtime")
        assert app.runtime is not None, app.runtime_error

        await send(pilot, "/attach photo.png")
        await wait_for(pilot, lambda: app.attachments.files, what="chip")
        await send(pilot, "animate then watch then result")
        await _approve(pilot, app, mention="photo.png")
        await wait_for(pilot, lambda: app.query(MediaPreview) and app.query(MediaPreview).last().shown,
                       timeout=30, what="video preview")
        video = app.query(MediaPreview).last()
        assert video.ref.kind == "video" and video.ref.url.startswith(sandbox.url)
        title = str(video.query_one(".media-title").content)
        assert title.startswith("▶ video 96×64 · 5.0 s · ")
        first = decode_video(video.data).frame
        assert _close(first, Image.open(photo)) < 12  # frame 1 is the photo itself
        saved = await _press_save(pilot, video)
        assert saved.suffix == ".gif" and saved.read_bytes() == video.data

        await send(pilot, f'submit fal-ai/kokoro/american-english text="{SPOKEN}" then watch then result')
        await _approve(pilot, app)
        await wait_for(pilot, lambda: len(app.query(MediaPreview)) == 2 and app.query(MediaPreview).last().shown,
                       timeout=30, what="audio preview")
        audio = app.query(MediaPreview).last()
        assert audio.ref.kind == "audio"
        strip, caption = audio.query_one(".media-body").content.renderables
        assert str(caption).startswith("♪ ") and " kHz mono" in str(caption)
        assert max(strip.peaks) > 0.05  # speech, not silence
        speech = await _press_save(pilot, audio)
        assert speech.suffix == ".wav" and speech.read_bytes()[:4] == b"RIFF"

        await send(pilot, f"/attach {speech}")
        await wait_for(pilot, lambda: app.attachments.files, what="chip")
        await send(pilot, "submit fal-ai/whisper then watch then result")
        await _approve(pilot, app, mention=speech.name)
        await wait_for(pilot, lambda: app.query(TextResult), timeout=30, what="transcript")
        assert str(app.query_one(TextResult).query_one(".text-body").content) == SPOKEN
        text = await _press_save(pilot, app.query_one(TextResult))
        assert text.read_text() == SPOKEN
