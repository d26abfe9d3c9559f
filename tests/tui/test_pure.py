"""Unit tests of the TUI's pure parts and agent/media.py."""

from __future__ import annotations

import base64

import httpx
import pytest

from agent import media
from agent.tui.commands import parse_slash
from agent.tui.graphics import wants_graphics
from agent.tui.history import InputHistory
from agent.tui.keys import DEFAULT_KEYS, load_keys
from agent.tui.progress import job_update, parse_progress
from agent.tui.screens import money, parse_args_json
from tests.tui.fakes import png_data_url


@pytest.mark.parametrize("text,tool,args", [
    ("/models text to image", "search_models", {"query": "text to image"}),
    ("/price fal-ai/flux/dev fal-ai/flux/schnell", "get_pricing",
     {"endpoint_ids": ["fal-ai/flux/dev", "fal-ai/flux/schnell"]}),
    ("/estimate 10 fal-ai/flux/dev", "estimate_pricing",
     {"estimate_type": "unit_price", "endpoints": {"fal-ai/flux/dev": 10}}),
    ("/estimate fal-ai/flux/dev 2.5", "estimate_pricing",
     {"estimate_type": "unit_price", "endpoints": {"fal-ai/flux/dev": 2.5}}),
    ("/status fal-ai/flux/dev r1", "get_queue_status", {"endpoint_id": "fal-ai/flux/dev", "request_id": "r1"}),
    ("/result fal-ai/flux/dev r1", "get_queue_result", {"endpoint_id": "fal-ai/flux/dev", "request_id": "r1"}),
    ("/cancel fal-ai/flux/dev r1", "cancel_queue_request", {"endpoint_id": "fal-ai/flux/dev", "request_id": "r1"}),
])
def test_slash_tools(text, tool, args):
    parsed = parse_slash(text)
    assert (parsed.tool, parsed.args, parsed.error) == (tool, args, None)


@pytest.mark.parametrize("text,needle", [
    ("/status fal-ai/flux/dev", "usage: /status [ENDPOINT ID]"),
    ("/estimate ten fal-ai/flux/dev", "N must be a positive number"),
    ("/estimate -1 fal-ai/flux/dev", "N must be a positive number"),
    ("/price", "usage: /price"),
    ("/export pdf", "usage: /export md|jsonl"),
    ("/nope", "unknown command /nope"),
    ('/models "unclosed', "could not read that command"),
    ("/", "empty command"),
])
def test_slash_errors(text, needle):
    assert needle in parse_slash(text).error


def test_slash_actions():
    assert parse_slash("/export").params == ("md",)
    assert parse_slash("/persona analyst").params == ("analyst",)
    assert parse_slash("/clear").action == "clear"


def test_history_walk_and_persistence(tmp_path):
    path = tmp_path / "h.txt"
    h = InputHistory(path)
    for t in ("one", "two\nlines", "two\nlines", "  "):
        h.add(t)
    assert h.entries == ["one", "two\nlines"]
    assert h.prev("draft") == "two\nlines" and h.prev("x") == "one" and h.prev("x") is None
    assert h.next() == "two\nlines" and h.next() == "draft" and h.next() is None
    assert InputHistory(path).entries == ["one", "two\nlines"]
    path.write_bytes(b"\xff\xfe bad")
    assert InputHistory(path).entries == []


def test_progress_parsing():
    assert parse_progress(["starting", "step 3/28"]) == (3.0, 28.0)
    assert parse_progress(["45% done"]) == (45.0, 100.0)
    assert parse_progress(["no numbers"]) is None
    up = job_update({"status": "IN_QUEUE", "queue_position": 2, "logs": None}, {"request_id": "r", "endpoint_id": "e"})
    assert (up.request_id, up.endpoint_id, up.queue_position, up.done) == ("r", "e", 2, None)
    assert job_update({"status": "COMPLETED", "request_id": "r"}).done == 1.0
    assert job_update({"status": "IN_QUEUE"}) is None


def test_keys_config_overrides(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[keys]\nclear = "ctrl+k"\ncancel = ["escape", "ctrl+g"]\nbogus = "x"\nsend = 3\n')
    keys = load_keys(cfg)
    assert keys["clear"] == "ctrl+k" and keys["cancel"] == "escape,ctrl+g"
    assert keys["send"] == DEFAULT_KEYS["send"] and "bogus" not in keys
    cfg.write_text("[keys\n")
    assert load_keys(cfg) == DEFAULT_KEYS


def test_args_json_and_money():
    assert parse_args_json('{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError, match="JSON object"):
        parse_args_json("[1]")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_args_json("{")
    assert (money(None), money(0.025), money(0.25), money(12.5)) == ("unknown", "$0.025", "$0.25", "$12.50")


def test_wants_graphics():
    assert wants_graphics({"TERM": "xterm-kitty"})
    assert not wants_graphics({"TERM": "xterm-kitty", "TMUX": "1"})
    assert not wants_graphics({"TERM": "xterm-256color"})
    assert wants_graphics({"TERM": "xterm", "FAL_PERSONA_IMAGES": "graphics"})


def test_find_media():
    result = {"images": [{"url": "https://x.invalid/a.png", "width": 4, "height": 4},
                         {"url": "https://x.invalid/a.png"}],
              "video": {"url": "https://x.invalid/v.mp4", "content_type": "video/mp4"},
              "page": {"url": "https://fal.ai/models"}}
    refs = media.find_media(result)
    assert [r.url for r in refs] == ["https://x.invalid/a.png", "https://x.invalid/v.mp4"]
    assert refs[0].is_image and not refs[1].is_image


async def test_download_data_url_and_http(tmp_path):
    data, ctype = await media.download(png_data_url())
    assert data[:4] == b"\x89PNG" and ctype == "image/png"
    with pytest.raises(media.MediaDownloadError):
        await media.download("data:image/png;base64,!!!")
    with pytest.raises(media.MediaDownloadError):
        await media.download("ftp://x/y.png")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/big.png":
            return httpx.Response(200, content=b"x" * 2000)
        if request.url.path == "/missing.png":
            return httpx.Response(404)
        return httpx.Response(200, content=b"PNGDATA", headers={"content-type": "image/png"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        assert await media.download("http://h/a.png", client=client) == (b"PNGDATA", "image/png")
        with pytest.raises(media.MediaTooLarge):
            await media.download("http://h/big.png", client=client, max_bytes=1000)
        with pytest.raises(media.MediaDownloadError, match="HTTP 404"):
            await media.download("http://h/missing.png", client=client)
        ref = media.MediaRef("http://h/a.png", "image/png")
        p1 = await media.save_media(ref, tmp_path, client=client)
        p2 = await media.save_media(ref, tmp_path, client=client)
    assert p1.name == "a.png" and p2.name == "a-2.png" and p1.read_bytes() == b"PNGDATA"
    assert media.save_result_json({"seed": 1}, tmp_path).read_text().strip().startswith("{")


def test_viewer_fails_gracefully(tmp_path, monkeypatch):
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    msg = media.open_in_viewer(tmp_path / "x.png")
    assert msg is not None and "no system viewer" in msg


def test_halfblock_renders_image():
    from rich.console import Console

    from agent.tui.halfblock import HalfBlockImage
    raw = base64.b64decode(png_data_url().split(",", 1)[1])
    img = HalfBlockImage.from_bytes(raw, width=8)
    console = Console(width=20, record=True, color_system="truecolor")
    console.print(img)
    text = console.export_text()
    assert text.splitlines()[0] == "▀" * 8 and len(text.splitlines()) == 4
