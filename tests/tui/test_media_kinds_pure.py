"""Pure parts of attachments and media kinds: kind detection, first frames, waveforms,
path completion, pasted paths, and the request text the planner and an LLM get."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from agent.media import find_media, kind_of, text_result
from agent.planner.grammar import parse
from agent.tui.attachments import (
    Attachment,
    AttachmentError,
    attach,
    complete_path,
    human_size,
    pasted_paths,
    request_text,
)
from agent.tui.commands import parse_slash
from agent.tui.mediainfo import decode_video, decode_wav, format_duration, mp4_duration, waveform
from tests.tui.fakes import gif_data_url, wav_bytes


def _payload(data_url: str) -> bytes:
    return base64.b64decode(data_url.split(",", 1)[1])


def _mp4(seconds: float, timescale: int = 1000, version: int = 0) -> bytes:
    """A minimal MP4 head: ftyp, then a moov holding an mvhd that states the length."""
    ftyp = struct.pack(">I", 16) + b"ftypisom" + b"\0\0\2\0"
    if version == 1:
        body = bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 0, 0, timescale, int(seconds * timescale))
    else:
        body = bytes(4) + struct.pack(">IIII", 0, 0, timescale, int(seconds * timescale))
    mvhd = struct.pack(">I", 8 + len(body) + 80) + b"mvhd" + body + bytes(80)
    return ftyp + struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd


@pytest.mark.parametrize("ctype,name,key,kind", [
    ("image/gif", "http://h/_media/a.gif", "video", "video"),  # the sandbox's image-to-video
    ("image/gif", "http://h/_media/a.gif", "images", "image"),
    ("audio/wav", "http://h/a.wav", "", "audio"),
    ("", "http://h/a.mp4?sig=1", "", "video"),
    ("", "./clip.MOV", "", "video"),
    ("", "./voice.flac", "", "audio"),
    ("", "data:audio/mpeg;base64,AAAA", "", "audio"),
    ("", "data:application/zip;base64,AAAA", "", "file"),
    ("application/octet-stream", "http://h/w.safetensors", "", "file"),
    ("", "http://h/x.png", "audio", "audio"),
])
def test_kind_of(ctype, name, key, kind):
    assert kind_of(ctype, name, key) == kind


def test_find_media_keeps_the_field_and_duration():
    result = {"video": {"url": "http://h/v.gif", "content_type": "image/gif"},
              "audio": {"url": "http://h/a.wav", "content_type": "audio/wav", "duration": 4.5},
              "images": [{"url": "http://h/1.png"}, {"url": "http://h/2.png"}]}
    refs = {r.url: r for r in find_media(result)}
    assert refs["http://h/v.gif"].kind == "video" and not refs["http://h/v.gif"].is_image
    assert refs["http://h/a.wav"].kind == "audio" and refs["http://h/a.wav"].duration == 4.5
    assert [refs[f"http://h/{i}.png"].key for i in (1, 2)] == ["images", "images"]


def test_text_result_only_for_media_free_text():
    assert text_result({"text": "hello there", "chunks": []}) == "hello there"
    assert text_result({"output": "an answer"}) == "an answer"
    assert text_result({"text": "  "}) is None
    assert text_result({"text": "x", "audio": {"url": "http://h/a.wav", "content_type": "audio/wav"}}) is None
    assert text_result(["text"]) is None


def test_decode_gif_first_frame_and_length():
    info = decode_video(_payload(gif_data_url(frames=4)))
    assert info.frames == 4 and info.duration == pytest.approx(1.0)
    assert (info.width, info.height) == (32, 24)
    assert info.frame.getpixel((0, 0))[1] < 100  # frame 1 of the gradient, not a blank canvas


@pytest.mark.parametrize("version", [0, 1])
def test_mp4_length_without_a_decoder(version):
    data = _mp4(12.5, version=version)
    assert mp4_duration(data) == pytest.approx(12.5)
    info = decode_video(data)
    assert info.frame is None and info.duration == pytest.approx(12.5)


def test_decode_video_refuses_other_bytes():
    with pytest.raises(ValueError, match="not a video format"):
        decode_video(b"certainly not a video, just some words")


def test_wav_length_and_envelope():
    info = decode_wav(wav_bytes(seconds=1.5, rate=8000), columns=30)
    assert info.duration == pytest.approx(1.5) and info.rate == 8000 and info.channels == 1
    assert len(info.peaks) == 30
    # the fake's loudness swells twice: loud at a quarter and at three quarters, quiet between
    loud = 20000 / 32768  # the fake's peak amplitude
    assert info.peaks[7] > 0.95 * loud and info.peaks[22] > 0.95 * loud and info.peaks[15] < loud / 4


def test_decode_wav_refuses_other_bytes():
    with pytest.raises(ValueError, match="not a PCM WAV"):
        decode_wav(b"RIFF....WAVEjunk")


def test_waveform_strip_shape():
    strip = waveform((0.0, 0.5, 1.0, 0.25), rows=2).plain.split("\n")
    assert strip == ["  █ ", "▁██▄"]  # levels 1, 8, 16, 4 of 16: two rows of eighths
    assert waveform((0.0, 0.0), rows=2).plain == "  \n▁▁"  # silence: a flat baseline


def test_waveform_fits_the_width_it_is_given():
    from rich.console import Console

    from agent.tui.mediainfo import Waveform, narrowed

    peaks = tuple(i / 47 for i in range(48))
    assert narrowed(peaks, 12) == tuple(peaks[i * 4 + 3] for i in range(12))  # the loudest of each 4
    assert narrowed(peaks, 60) == peaks
    console = Console(width=20, record=True, color_system=None)
    console.print(Waveform(peaks))
    lines = console.export_text().rstrip("\n").split("\n")
    assert [len(line) for line in lines] == [20, 20]
    assert [len(line.strip()) for line in lines] == [10, 20]  # the top row only where it is loud
    assert lines[1].endswith("█") and lines[1][0] == "▁"


@pytest.mark.parametrize("seconds,text", [(None, ""), (4.54, "4.5 s"), (65, "1:05"), (3723, "1:02:03")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_human_size():
    assert [human_size(n) for n in (812, 1229, 3 * 1024 ** 2 + 500_000, 5 * 1024 ** 3)] == [
        "812 B", "1.2 KB", "3.5 MB", "5.0 GB"]


def test_complete_path(tmp_path: Path):
    (tmp_path / "photo.png").write_bytes(b"x")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.png").write_bytes(b"x")
    (tmp_path / ".secret").write_bytes(b"x")
    (tmp_path / "voice.wav").write_bytes(b"x")
    assert complete_path("pho", tmp_path) == ("photo", ["photo.png", "photos/"])
    assert complete_path("v", tmp_path) == ("voice.wav", [])
    assert complete_path("photos", tmp_path) == ("photos/", [])  # the one match, a folder
    assert complete_path("photos/", tmp_path) == ("photos/cat.png", [])
    assert complete_path(f"{tmp_path}/vo") == (f"{tmp_path}/voice.wav", [])
    assert complete_path("zzz", tmp_path) == ("zzz", [])
    assert complete_path("", tmp_path)[1] == ["photo.png", "photos/", "voice.wav"]  # no dot files
    assert complete_path(".s", tmp_path) == (".secret", [])
    assert complete_path("nowhere/x", tmp_path) == ("nowhere/x", [])


def test_pasted_paths(tmp_path: Path):
    one = tmp_path / "my photo.png"
    two = tmp_path / "b.wav"
    one.write_bytes(b"x")
    two.write_bytes(b"x")
    assert pasted_paths(str(one)) == [str(one)]  # spaces and all
    assert pasted_paths(f"'{one}'") == [str(one)]  # quoted by a drag-and-drop
    assert pasted_paths(f"file://{tmp_path}/my%20photo.png") == [str(one)]
    assert pasted_paths(f"{str(one).replace(' ', chr(92) + ' ')} {two}") == [str(one), str(two)]
    assert pasted_paths(f"{one}\n{two}\n") == [str(one), str(two)]
    assert pasted_paths("a photo of a cat") is None
    assert pasted_paths(f"{one} and more words") is None
    assert pasted_paths(str(tmp_path)) is None  # a folder is not a file
    assert pasted_paths("") is None


def test_attach_checks_the_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"x" * 1229)
    (tmp_path / "sub").mkdir()
    item = attach("a.png")
    assert (item.path, item.size, item.kind, item.field) == ("./a.png", 1229, "image", "image_url")
    assert item.describe() == "./a.png (image, 1.2 KB)"
    assert attach(f"file://{tmp_path}/a.png").path == f"{tmp_path}/a.png"
    with pytest.raises(AttachmentError, match="no such file: missing.png"):
        attach("missing.png")
    with pytest.raises(AttachmentError, match="is a folder"):
        attach("sub")
    with pytest.raises(AttachmentError, match="which file"):
        attach("  ")


IMG = Attachment("./a.png", 1229, "image")
IMG2 = Attachment("./b.png", 10, "image")
WAV = Attachment("./v.wav", 2048, "audio")
ZIP = Attachment("./set.zip", 99, "file")


def test_planner_text_is_the_planner_grammar():
    text = request_text('submit fal-ai/flux/dev/image-to-image prompt "then more" then watch then result',
                        [IMG], offline=True)
    assert text == ('submit fal-ai/flux/dev/image-to-image prompt "then more" image_url=./a.png'
                    " then watch then result")
    steps = parse(text)
    assert steps[0].args["arguments"] == {"prompt": "then more", "image_url": "./a.png"}
    assert steps[0].args["endpoint_id"] == "fal-ai/flux/dev/image-to-image"
    assert [s.tool for s in steps[1:]] == ["stream_queue_status", "get_queue_result"]


def test_planner_text_several_kinds_and_paths_with_spaces():
    spaced = Attachment("./my photo.png", 5, "image")
    text = request_text("submit fal-ai/x prompt hi", [spaced, WAV, ZIP], offline=True)
    assert text == 'submit fal-ai/x prompt hi image_url="./my photo.png" audio_url=./v.wav'
    assert parse(text)[0].args["arguments"]["image_url"] == "./my photo.png"
    many = request_text("submit fal-ai/x prompt hi", [IMG, IMG2], offline=True)
    assert parse(many)[0].args["arguments"]["image_urls"] == ["./a.png", "./b.png"]


def test_planner_text_path_verbs_take_the_file_after_them():
    assert request_text("animate then result", [IMG], offline=True) == "animate ./a.png then result"
    assert request_text("upscale", [IMG], offline=True) == "upscale ./a.png"
    assert (request_text('edit with fal-ai/flux/dev/image-to-image prompt "watercolor"', [IMG], offline=True)
            == 'edit ./a.png with fal-ai/flux/dev/image-to-image prompt "watercolor"')
    # the path typed already: not put in twice
    assert request_text("animate ./a.png", [IMG], offline=True) == "animate ./a.png"


def test_llm_text_names_each_file():
    text = request_text("make this photo move", [IMG, WAV], offline=False)
    first, _, files = text.partition("\n\n")
    assert first == "make this photo move"
    assert files.startswith("Attached files: ./a.png (image, 1.2 KB), ./v.wav (audio, 2.0 KB)")
    assert request_text("no files", [], offline=False) == "no files"


def test_parse_attach_and_detach():
    assert parse_slash("/attach ./my photo.png").params == ("./my photo.png",)
    assert parse_slash("/attach").error == "usage: /attach PATH (Tab completes it)"
    assert parse_slash("/attach it's.png").params == ("it's.png",)  # no shlex on a path
    assert parse_slash("/detach").action == "detach" and parse_slash("/detach").params == ()
    assert parse_slash("/detach 2").params == ("2",)


def test_a_reopened_chat_shows_a_text_result_inline():
    from agent.transcript.replay import replay
    from agent.tui.media_view import MediaPreview, TextResult
    from agent.tui.resume import widgets_for

    args = {"endpoint_id": "fal-ai/whisper", "request_id": "req-stt-1"}
    def row(kind: str, data: dict) -> dict:
        return {"kind": kind, "data": data, "session_id": "s1", "persona": "producer"}

    events = [row("user_prompt", {"text": "result"}),
              row("tool_call", {"call_id": "c1", "name": "get_queue_result", "args": args}),
              row("tool_result", {"call_id": "c1", "name": "get_queue_result", "content": "text",
                                  "artifact": {"text": "hello from the tape", "chunks": []}}),
              row("tool_call", {"call_id": "c2", "name": "get_queue_result", "args": {**args, "request_id": "req-v"}}),
              row("tool_result", {"call_id": "c2", "name": "get_queue_result", "content": "video",
                                  "artifact": {"video": {"url": "http://h/v.gif", "content_type": "image/gif"}}})]
    widgets, _ = widgets_for(replay("s1", events, messages=False).shown, max_items=50)
    (text,) = [w for w in widgets if isinstance(w, TextResult)]
    (video,) = [w for w in widgets if isinstance(w, MediaPreview)]
    assert text.text == "hello from the tape" and text.stem == "fal-ai-whisper-req-stt-"
    assert video.ref.kind == "video"
