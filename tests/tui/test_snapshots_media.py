"""Snapshots of every result kind and of attached files, at 80x24 and 120x40 (frozen clock,
no blinking cursor, no toasts): a video's first frame with its length, an audio waveform
with its length, a speech-to-text transcript inline, and chips above the prompt."""

from __future__ import annotations

import pytest

from agent.tui.media_view import MediaPreview
from tests.tui.conftest import send, wait_for
from tests.tui.fakes import wav_bytes
from tests.tui.test_snapshots import _app, steady

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


async def _result(pilot, command: str) -> None:
    await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
    await send(pilot, command)
    await wait_for(pilot, lambda: pilot.app.turn_worker.is_finished, what="turn")
    await wait_for(pilot, lambda: all(m.shown for m in pilot.app.query(MediaPreview)), what="preview")
    await pilot.wait_for_scheduled_animations()
    pilot.app.clear_notifications()
    await steady(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_video_result(snap_compare, size):
    async def run(pilot):
        await _result(pilot, "animate")

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_audio_result(snap_compare, size):
    async def run(pilot):
        await _result(pilot, "speak")

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_text_result(snap_compare, size):
    async def run(pilot):
        await _result(pilot, "transcribe")

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_attach_chips(snap_compare, size, tmp_path):
    (tmp_path / "photo.png").write_bytes(b"x" * 1229)  # the autouse fixture made tmp_path the cwd
    (tmp_path / "voice.wav").write_bytes(wav_bytes(0.5))

    async def run(pilot):
        from agent.tui.attachments import AttachmentChip

        await wait_for(pilot, lambda: pilot.app.personas, what="runtime")
        await send(pilot, "/attach photo.png")
        await send(pilot, "/attach voice.wav")
        await wait_for(pilot, lambda: len(pilot.app.query(AttachmentChip)) == 2, what="chips")
        prompt = pilot.app.query_one("#prompt")
        prompt.text = 'submit fal-ai/flux/dev/image-to-image prompt "watercolor"'
        prompt.move_cursor(prompt.document.end)
        pilot.app.clear_notifications()
        await steady(pilot)

    assert snap_compare(_app(), terminal_size=SIZES[size], run_before=run)

