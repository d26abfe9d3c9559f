"""Pilot tests: /attach (and Tab completion), a pasted path, /detach and the chips, a missing
path; Save for a video, an audio and a text result; an MP4 without a decoder."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from textual import events

from agent.locations import media_dir
from agent.media import MediaRef
from agent.tui.attachments import AttachmentChip
from agent.tui.chat import ErrorMessage, UserMessage
from agent.tui.media_view import MediaPreview, TextResult
from agent.tui.screens import ApprovalScreen
from tests.tui.conftest import make_app, send, wait_for
from tests.tui.fakes import TRANSCRIPT, wav_bytes

SIZE = (120, 40)


def _files(folder: Path) -> None:
    (folder / "photo.png").write_bytes(b"\x89PNG" + b"x" * 1225)
    (folder / "voice.wav").write_bytes(wav_bytes(0.5))
    (folder / "photos").mkdir()
    (folder / "photos" / "cat.png").write_bytes(b"x" * 10)


async def _ready(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.runtime is not None, what="runtime")


def _prompts(app) -> list[str]:
    return [r["data"]["text"] for r in app.runtime.transcript.rows if r["kind"] == "user_prompt"]


def _chips(app) -> list[str]:
    return [str(c.label) for c in app.query(AttachmentChip)]


async def test_attach_shows_a_chip_and_goes_with_the_next_request_only(tmp_path):
    _files(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await send(pilot, "/attach photo.png")
        await wait_for(pilot, lambda: _chips(app), what="chip")
        assert _chips(app) == ["photo.png · 1.2 KB ✕"] and app.attachments.display
        await send(pilot, 'submit fal-ai/flux/dev/image-to-image prompt "watercolor"')
        await wait_for(pilot, lambda: _prompts(app), what="the request")
        assert _prompts(app) == ['submit fal-ai/flux/dev/image-to-image prompt "watercolor" image_url=./photo.png']
        assert not _chips(app) and not app.attachments.display and app.attachments.files == []
        shown = str(app.query(UserMessage).last().content)
        assert shown.endswith("attached: photo.png (image, 1.2 KB)")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="approval")
        await pilot.click("#approve")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn")
        await send(pilot, "hello")  # the chips went with the request before: nothing more
        await wait_for(pilot, lambda: len(_prompts(app)) == 2, what="second request")
        assert _prompts(app)[1] == "hello"


async def test_attach_for_a_model_that_reads_language(tmp_path):
    _files(tmp_path)
    app = make_app(settings=SimpleNamespace(uses_offline_planner=False))
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await send(pilot, "/attach ./voice.wav")
        await wait_for(pilot, lambda: _chips(app), what="chip")
        await send(pilot, "transcribe this with whisper")
        await wait_for(pilot, lambda: _prompts(app), what="the request")
        text = _prompts(app)[0]
        assert text.startswith("transcribe this with whisper\n\nAttached files: ./voice.wav (audio, ")


async def test_tab_completes_the_path_after_attach(tmp_path):
    _files(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        prompt = app.query_one("#prompt")
        prompt.focus()
        prompt.text = "/attach pho"
        prompt.move_cursor(prompt.document.end)
        await pilot.press("tab")
        assert prompt.text == "/attach photo" and app.focused is prompt  # Tab stays in the prompt
        await pilot.pause()
        assert any("photo.png" in n.message and "photos/" in n.message for n in app._notifications)
        await pilot.press("s", "tab")
        assert prompt.text == "/attach photos/"
        await pilot.press("tab")
        assert prompt.text == "/attach photos/cat.png"
        await pilot.press("enter")
        await wait_for(pilot, lambda: _chips(app), what="chip")
        assert app.attachments.files[0].path == "./photos/cat.png"
        # Tab anywhere else still moves the focus on
        prompt.text = "hello"
        await pilot.press("tab")
        assert app.focused is not prompt


async def test_pasting_a_path_attaches_it_and_other_text_is_typed(tmp_path):
    _files(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        prompt = app.query_one("#prompt")
        prompt.focus()
        prompt.text = "animate "
        prompt.move_cursor(prompt.document.end)
        app.post_message(events.Paste(f"'{tmp_path / 'photo.png'}'"))  # as the terminal sends a drop
        await wait_for(pilot, lambda: _chips(app), what="chip")
        assert prompt.text == "animate "  # the path became a chip, not text
        assert app.attachments.files[0].path == str(tmp_path / "photo.png")
        app.post_message(events.Paste("a cat in the rain"))
        await wait_for(pilot, lambda: "rain" in prompt.text, what="pasted text")
        assert prompt.text == "animate a cat in the rain" and len(_chips(app)) == 1
        prompt.text = "/attach "
        prompt.move_cursor(prompt.document.end)
        app.post_message(events.Paste("voice.wav"))  # typing a command: the path is text
        await wait_for(pilot, lambda: prompt.text.endswith("voice.wav"), what="path as text")
        assert prompt.text == "/attach voice.wav" and len(_chips(app)) == 1


async def test_detach_by_number_name_all_and_by_click(tmp_path):
    _files(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        for name in ("photo.png", "voice.wav", "photos/cat.png"):
            await send(pilot, f"/attach {name}")
        await wait_for(pilot, lambda: len(_chips(app)) == 3, what="three chips")
        await send(pilot, "/attach photo.png")  # the same file again: still one chip for it
        await pilot.pause()
        assert len(_chips(app)) == 3
        await send(pilot, "/detach 2")
        await wait_for(pilot, lambda: len(_chips(app)) == 2, what="detach 2")
        assert [f.name for f in app.attachments.files] == ["photo.png", "cat.png"]
        await send(pilot, "/detach cat.png")
        await wait_for(pilot, lambda: len(_chips(app)) == 1, what="detach by name")
        await send(pilot, "/detach nothing.png")
        await wait_for(pilot, lambda: app.query(ErrorMessage), what="error")
        assert "no attached file 'nothing.png'; attached: 1. photo.png" in str(app.query(ErrorMessage).last().content)
        await pilot.click(AttachmentChip)
        await wait_for(pilot, lambda: not _chips(app), what="chip clicked off")
        assert not app.attachments.display and app.focused is app.query_one("#prompt")
        for name in ("photo.png", "voice.wav"):
            await send(pilot, f"/attach {name}")
        await wait_for(pilot, lambda: len(_chips(app)) == 2, what="two chips")
        await send(pilot, "/detach")
        await wait_for(pilot, lambda: not _chips(app), what="all detached")
        await send(pilot, "hello")
        await wait_for(pilot, lambda: _prompts(app), what="request")
        assert _prompts(app) == ["hello"]


async def test_attach_a_missing_path_is_an_error_and_attaches_nothing(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await send(pilot, "/attach ./nowhere/missing.png")
        await wait_for(pilot, lambda: app.query(ErrorMessage), what="error")
        assert str(app.query(ErrorMessage).last().content) == "⚠ no such file: ./nowhere/missing.png; nothing attached"
        assert not _chips(app) and not app.attachments.display
        (tmp_path / "folder").mkdir()
        await send(pilot, "/attach folder")
        await wait_for(pilot, lambda: len(app.query(ErrorMessage)) == 2, what="second error")
        assert "folder is a folder" in str(app.query(ErrorMessage).last().content)
        assert not _chips(app)


async def _press_save(pilot, widget) -> Path:
    before = set(media_dir().glob("*")) if media_dir().exists() else set()
    widget.query_one("#save-media").press()
    await wait_for(pilot, lambda: media_dir().exists() and set(media_dir().glob("*")) - before, what="saved file")
    (saved,) = set(media_dir().glob("*")) - before
    return saved


async def test_save_a_video_an_audio_and_a_text_result(tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await send(pilot, "animate")
        await wait_for(pilot, lambda: app.query(MediaPreview) and app.query(MediaPreview).last().shown, what="video")
        video = app.query(MediaPreview).last()
        assert video.ref.kind == "video"
        assert "▶ first frame · 4 frames · 1.0 s" in str(video.query_one(".media-body").content.renderables[1])
        assert "▶ video 32×24 · 1.0 s" in str(video.query_one(".media-title").content)
        saved = await _press_save(pilot, video)
        assert saved.suffix == ".gif" and saved.read_bytes()[:6] == b"GIF89a"
        assert saved.name.startswith("fal-ai-kling-video-v1-standard-image-to-video-req-anim")

        await send(pilot, "speak")
        await wait_for(pilot, lambda: len(app.query(MediaPreview)) == 2 and app.query(MediaPreview).last().shown,
                       what="audio")
        audio = app.query(MediaPreview).last()
        assert audio.ref.kind == "audio"
        strip, caption = audio.query_one(".media-body").content.renderables
        assert len(strip.peaks) == 48 and strip.rows == 2  # drawn to the width it gets
        assert str(caption) == "♪ 1.5 s · 8 kHz mono"
        saved = await _press_save(pilot, audio)
        assert saved.suffix == ".wav" and saved.read_bytes() == wav_bytes()

        await send(pilot, "transcribe")
        await wait_for(pilot, lambda: app.query(TextResult), what="text")
        text = app.query_one(TextResult)
        assert str(text.query_one(".text-body").content) == TRANSCRIPT
        saved = await _press_save(pilot, text)
        assert saved.suffix == ".txt" and saved.read_text() == TRANSCRIPT
        assert "text: The quick brown" in str(app.jobs.rows["req-transcribe-0001"].query_one(".job-result").content)


async def test_an_mp4_shows_its_length_without_a_frame(tmp_path):
    import base64

    from tests.tui.test_media_kinds_pure import _mp4

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        url = "data:video/mp4;base64," + base64.b64encode(_mp4(8.0)).decode()
        preview = await app.chat.add(MediaPreview(MediaRef(url, "video/mp4", key="video"), stem="clip"))
        await wait_for(pilot, lambda: preview.shown, what="preview")
        body = str(preview.query_one(".media-body").content)
        assert body.startswith("▶ 8.0 s · video/mp4: no decoder here for a frame")
        assert "▶ video · 8.0 s · inline data" == str(preview.query_one(".media-title").content)
        saved = await _press_save(pilot, preview)
        assert saved.name == "clip.mp4" and saved.read_bytes() == _mp4(8.0)


async def test_attached_files_sent_before_the_runtime_is_up_go_once_it_is(tmp_path):
    import asyncio

    from tests.tui.fakes import FakeFactory

    _files(tmp_path)
    gate = asyncio.Event()
    factory = FakeFactory(gate=gate)
    app = make_app(factory)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/attach photo.png")
        await wait_for(pilot, lambda: _chips(app), what="chip")
        await send(pilot, "submit fal-ai/x prompt hi")
        await pilot.pause()
        assert not _chips(app) and not factory.built  # shown, waiting for the runtime
        assert str(app.query(UserMessage).last().content).endswith("attached: photo.png (image, 1.2 KB)")
        gate.set()
        await wait_for(pilot, lambda: app.runtime is not None and _prompts(app), what="the request")
        assert _prompts(app) == ["submit fal-ai/x prompt hi image_url=./photo.png"]


async def test_with_terminal_graphics_the_first_frame_is_a_picture_widget_with_its_caption(monkeypatch):
    from textual.widgets import Static

    from agent.tui import media_view

    class FakeGraphics(Static):  # stands in for textual-image's widget (a PIL image in, a picture out)
        def __init__(self, image, classes: str = "") -> None:
            super().__init__(f"picture {image.size[0]}x{image.size[1]}", classes=classes)

    monkeypatch.setattr(media_view, "graphics_image_class", lambda: FakeGraphics)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _ready(pilot)
        await send(pilot, "animate")
        await wait_for(pilot, lambda: app.query(MediaPreview) and app.query(MediaPreview).last().shown, what="video")
        video = app.query(MediaPreview).last()
        kinds = [type(w).__name__ for w in video.children]
        assert kinds[:3] == ["Static", "FakeGraphics", "Static"]  # title, picture, caption
        assert str(video.children[1].content) == "picture 32x24"
        assert str(video.children[2].content) == "▶ first frame · 4 frames · 1.0 s"
