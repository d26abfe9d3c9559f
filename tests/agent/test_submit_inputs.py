"""Local files in a submit and arguments checked against the endpoint's schema before approval
(issue 13), on a loopback sandbox, with the offline planner, a scripted OpenAI server and `ask`.

The sandbox runs on its own thread at 50x speed (an i2i job of 3.5 sandbox seconds takes ~0.1 s);
the session talks to it as to live fal.ai (FAL_KEY and every base URL set), so the test can read
its job list and its upload records (`GET /_sandbox/state`, `GET /_sandbox/uploads`).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from scripted_openai import ScriptedOpenAI, call, calls, text

from agent.cli import ask, main
from agent.core.events import ApprovalRequest, Decision, ToolEnd, ToolProgress
from agent.core.runtime import build_runtime
from agent.settings import Settings
from agent.transcript.store import TranscriptStore
from sandbox.config import SandboxConfig
from sandbox.server import RunningSandbox, start_in_thread

Image = pytest.importorskip("PIL.Image")
I2I = "fal-ai/flux/dev/image-to-image"
MIB = 1024 * 1024


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    """A sandbox at 50x speed whose models read inputs up to 200 MiB, and the environment that
    points the app at it as at live fal.ai."""
    config = SandboxConfig(speed=50.0, media_max_bytes=200 * MIB, uploads_dir=tmp_path / "sandbox-files")
    sb = start_in_thread(config=config)
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


def control(sb: RunningSandbox, what: str) -> dict:
    """One of the sandbox's `/_sandbox/` controls, read over HTTP."""
    resp = httpx.get(f"{sb.url}/_sandbox/{what}", timeout=10)
    resp.raise_for_status()
    return resp.json()


def pattern(path: Path, kind: str, size: tuple[int, int] = (96, 64)) -> Path:
    """A picture with structure: `a` is diagonal bands, `b` rings; the two are uncorrelated."""
    w, h = size
    im = Image.new("L", size)
    for y in range(h):
        for x in range(w):
            v = ((x + 2 * y) * 7) % 256 if kind == "a" else (((x - w / 2) ** 2 + (y - h / 2) ** 2) // 9 * 40) % 256
            im.putpixel((x, y), int(v))
    im.convert("RGB").save(path)
    return path


def correlation(result: bytes, reference: Path) -> float:
    """Pearson correlation of the result's upper four fifths (the sandbox draws the prompt in the
    bottom fifth) with the same part of `reference`, in grey, at the reference's size."""
    ref = Image.open(reference).convert("L")
    out = Image.open(io.BytesIO(result)).convert("L").resize(ref.size)
    box = (0, 0, ref.width, ref.height * 4 // 5)
    a, b = list(out.crop(box).getdata()), list(ref.crop(box).getdata())
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    var = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
    return cov / var


def padded_png(path: Path, source: Path, total: int) -> Path:
    """`source` re-written with a private ancillary chunk (`plPd`, which decoders skip) holding
    zeros, so the file is a valid PNG of exactly `total` bytes. Written in slices: it is never
    held in memory."""
    data = source.read_bytes()
    iend = data.rindex(b"IEND") - 4  # the IEND chunk's length field
    pad = total - len(data) - 12
    crc = zlib.crc32(b"plPd")
    zeros = bytes(MIB)
    with path.open("wb") as out:
        out.write(data[:iend])
        out.write(struct.pack(">I", pad) + b"plPd")
        left = pad
        while left:
            piece = zeros[:min(left, MIB)]
            crc = zlib.crc32(piece, crc)
            out.write(piece)
            left -= len(piece)
        out.write(struct.pack(">I", crc & 0xFFFFFFFF))
        out.write(data[iend:])
    assert path.stat().st_size == total
    return path


class Approver:
    """Approves everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.requests: list[ApprovalRequest] = []

    async def __call__(self, request: ApprovalRequest) -> Decision:
        self.requests.append(request)
        return Decision(action="approve")


async def run(text_: str, approver: Approver, persona: str = "producer") -> list:
    """One turn of the offline planner on a fresh runtime; its events."""
    runtime = build_runtime(Settings(), persona, source="cli", user="t")
    try:
        return [e async for e in runtime.runner.run_turn(text_, approver)]
    finally:
        await runtime.aclose()


def ends(events: list) -> list[ToolEnd]:
    return [e for e in events if isinstance(e, ToolEnd)]


def result_image(sb: RunningSandbox, events: list) -> bytes:
    """The first image of the turn's get_queue_result, downloaded from the sandbox."""
    result = next(e for e in ends(events) if e.name == "get_queue_result")
    assert not result.error, result.content
    url = result.artifact["images"][0]["url"]
    return httpx.get(url, timeout=10).content


# -- local files in, result derived from them ------------------------------------------------

async def test_edit_uploads_the_file_submits_its_url_and_the_result_is_derived_from_it(sandbox, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo, other = pattern(tmp_path / "photo.png", "a"), pattern(tmp_path / "other.png", "b")
    approver = Approver()
    events = await run(f'edit ./photo.png with {I2I} prompt "watercolor" then watch it then result', approver)
    [request] = approver.requests
    # The approval listed the file and its size, and the schema's defaults for what was left out.
    assert request.uploads == [("image_url", "./photo.png", photo.stat().st_size)]
    assert request.defaults["strength"] == 0.95 and "prompt" not in request.defaults
    assert request.schema_note == ""
    [job] = sandbox.state.queue.jobs.values()
    [uploaded] = control(sandbox, "uploads")["uploads"]
    assert job.input["image_url"] == uploaded["access_url"] and job.input["prompt"] == "watercolor"
    assert uploaded["size"] == photo.stat().st_size and uploaded["via"] == "cdn"
    image = result_image(sandbox, events)
    mine, theirs = correlation(image, photo), correlation(image, other)
    assert mine > 0.9 and abs(theirs) < 0.3, (mine, theirs)
    # The progress event and the transcript carry the file's name, size and URL, never its bytes.
    [landed] = [e for e in events if isinstance(e, ToolProgress) and e.data.get("status") == "UPLOADED"]
    assert landed.data["upload"]["url"] == uploaded["access_url"]
    rows = TranscriptStore().events(TranscriptStore().latest_conversation())
    progress = [r for r in rows if r["kind"] == "tool_progress" and r["data"]["data"].get("status") == "UPLOADED"]
    assert progress[0]["data"]["data"]["upload"].items() >= {
        "file_name": "photo.png", "size": photo.stat().st_size, "url": uploaded["access_url"]}.items()
    assert photo.read_bytes()[:64].hex() not in json.dumps(rows)


async def test_a_150_mib_file_goes_up_in_15_parts_and_the_job_reads_it(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    small = pattern(tmp_path / "small.png", "a")
    big = padded_png(tmp_path / "big.png", small, 150 * MIB)
    approver = Approver()
    events = await run(f'edit {big} with {I2I} prompt "watercolor" then watch it then result', approver)
    assert approver.requests[0].uploads == [("image_url", str(big), 150 * MIB)]
    [uploaded] = control(sandbox, "uploads")["uploads"]
    assert uploaded["via"] == "multipart" and uploaded["size"] == 150 * MIB
    assert uploaded["part_numbers"] == list(range(1, 16))
    image = result_image(sandbox, events)  # the model decoded the padded PNG it was sent
    assert correlation(image, small) > 0.9


async def test_submit_with_a_path_argument_and_upscale_and_animate(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pattern(tmp_path / "a.png", "a")
    approver = Approver()
    events = await run(f'submit {I2I} image_url=@a.png prompt "ink" then upscale ./a.png then '
                       'animate ./a.png then watch it then result', approver)
    assert [e.name for e in ends(events)] == ["submit_queue_request"] * 3 + ["stream_queue_status",
                                                                            "get_queue_result"]
    assert all(not e.error for e in ends(events)), [e.content for e in ends(events) if e.error]
    jobs = sorted(sandbox.state.queue.jobs.values(), key=lambda j: j.seq)
    assert [j.endpoint.endpoint_id for j in jobs] == [I2I, "fal-ai/esrgan", "fal-ai/ltx-video/image-to-video"]
    urls = {u["access_url"] for u in control(sandbox, "uploads")["uploads"]}
    assert {j.input["image_url"] for j in jobs} <= urls and len(urls) == 3
    video = ends(events)[-1].artifact["video"]
    assert video["content_type"] == "image/gif"


async def test_upload_file_tool_through_the_planner_is_asked_and_recorded(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.bin").write_bytes(b"\x00\x01" * 5000)
    approver = Approver()
    events = await run("upload_file path=./notes.bin", approver)
    [request] = approver.requests
    assert request.name == "upload_file" and request.kind == "upload"
    [end] = ends(events)
    assert not end.error and end.artifact["size"] == 10000
    [uploaded] = control(sandbox, "uploads")["uploads"]
    assert end.artifact["url"] == uploaded["access_url"]
    store = TranscriptStore()
    [row] = [r for r in store.events(store.latest_conversation()) if r["kind"] == "tool_result"]
    assert row["data"]["artifact"].items() >= {"file_name": "notes.bin", "size": 10000,
                                               "url": uploaded["access_url"]}.items()


# -- refused before approval, no job ------------------------------------------------------------

@pytest.mark.parametrize(("step", "named"), [
    (f'submit {I2I} image_url=./a.png promt="ink"', "unknown field 'promt' (did you mean 'prompt'?)"),
    (f"submit {I2I} image_url=./a.png", "missing required field 'prompt'"),
    ('submit fal-ai/flux/dev prompt "ink" image_size=huge', "field 'image_size'"),
], ids=["misspelt", "missing-required", "bad-enum"])
async def test_bad_arguments_are_refused_before_approval_and_nothing_is_sent(sandbox, tmp_path, monkeypatch,
                                                                           step, named):
    monkeypatch.chdir(tmp_path)
    pattern(tmp_path / "a.png", "a")
    approver = Approver()
    events = await run(step, approver)
    assert approver.requests == []  # never put to approval
    [end] = ends(events)
    assert end.error and named in end.content
    assert end.artifact["error"]["outcome"] == "refused"
    assert end.artifact["error"]["type"] == "ArgumentsInvalid"
    assert any(named in p for p in end.artifact["error"]["problems"])
    if "image_size" in step:
        assert '"square_hd"' in end.content  # the allowed values are named
    state = control(sandbox, "state")
    assert state["jobs"] == 0 and state["uploads"] == 0


async def test_a_missing_local_file_is_refused_before_approval_naming_it(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    approver = Approver()
    events = await run('edit ./nowhere.png prompt "ink"', approver)
    assert approver.requests == []
    [end] = ends(events)
    assert end.error and "./nowhere.png" in end.content and end.artifact["error"]["type"] == "FileMissingError"
    assert control(sandbox, "state")["jobs"] == 0


async def test_a_persona_without_upload_file_may_not_send_local_files(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pattern(tmp_path / "a.png", "a")
    folder = tmp_path / "home" / "personas"
    folder.mkdir(parents=True)
    (folder / "nofiles.toml").write_text('description = "no uploads"\nbudget_usd = 1\ntools = ["*"]\n'
                                         'system_prompt = "x"\n')
    approver = Approver()
    events = await run('edit ./a.png prompt "ink"', approver, persona="nofiles")
    [end] = ends(events)
    assert approver.requests == [] and end.artifact["error"]["type"] == "UploadOutOfScope"
    assert "upload_file" in end.content and control(sandbox, "state")["jobs"] == 0


def test_a_scripted_model_hears_the_misspelt_field_and_fixes_it(sandbox, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    photo = pattern(tmp_path / "photo.png", "a")
    bad = {"endpoint_id": I2I, "arguments": {"image_url": "./photo.png", "promt": "ink"}}
    good = {"endpoint_id": I2I, "arguments": {"image_url": "./photo.png", "prompt": "ink"}}
    script = [calls(call("submit_queue_request", bad)), calls(call("submit_queue_request", good)),
              text("Submitted.")]
    with ScriptedOpenAI(script) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        code = main(["ask", "--json", "--yes", "--no-listen", "make it ink"])
    out = json.loads(capsys.readouterr().out)
    # ask's first failure decides its exit code (README), so the refused call still says 6.
    assert code == ask.EXIT_REFUSED and out["answer"] == "Submitted."
    first, second = out["tool_calls"]
    assert "unknown field 'promt' (did you mean 'prompt'?)" in first["error"]
    # The model's next request carried the refusal as the tool's answer.
    tool_msgs = [m for m in srv.requests[1]["messages"] if m.get("role") == "tool"]
    assert "unknown field 'promt'" in tool_msgs[-1]["content"]
    [job] = sandbox.state.queue.jobs.values()  # only the fixed one reached the sandbox
    [uploaded] = control(sandbox, "uploads")["uploads"]
    assert job.input == {"image_url": uploaded["access_url"], "prompt": "ink"}
    assert uploaded["size"] == photo.stat().st_size and "result" in second


@pytest.mark.parametrize("step", [f'submit {I2I} image_url=./a.png promt="ink"',
                                  'edit ./nowhere.png prompt "ink"'], ids=["schema", "missing-file"])
def test_ask_exits_6_for_a_refused_submit(sandbox, tmp_path, monkeypatch, capsys, step):
    monkeypatch.chdir(tmp_path)
    pattern(tmp_path / "a.png", "a")
    code = main(["ask", "--yes", "--no-listen", step])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == ask.EXIT_REFUSED == 6
    assert err.startswith("fal-persona: refused: submit_queue_request was not run: ")
    assert ("'promt'" in err) if "promt" in step else ("./nowhere.png" in err)
    assert control(sandbox, "state")["jobs"] == 0


def test_ask_saves_video_audio_and_text_results(sandbox, tmp_path, monkeypatch, capsys):
    """Each media kind the sandbox's endpoints return reaches the disk: a GIF video from
    image-to-video, a WAV from text-to-speech, the transcript of that WAV as text."""
    monkeypatch.chdir(tmp_path)
    pattern(tmp_path / "a.png", "a")
    save = tmp_path / "out"
    chain = ('animate ./a.png then watch it then result then '
             'submit fal-ai/kokoro/american-english text="hello there" then watch it then result')
    assert main(["ask", "--json", "--yes", "--no-listen", "--save", str(save), chain]) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    paths = [Path(s["path"]) for s in out["saved"]]
    assert [p.suffix for p in paths] == [".gif", ".wav"]
    assert paths[0].read_bytes()[:6] == b"GIF89a" and paths[1].read_bytes()[:4] == b"RIFF"
    wav = paths[1]
    code = main(["ask", "--json", "--yes", "--no-listen", "--save", str(save),
                 f"submit fal-ai/whisper audio_url={wav} then watch it then result"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out.get("error")
    [saved] = out["saved"]
    assert saved["path"].endswith(".txt") and "hello there" in Path(saved["path"]).read_text()


async def test_a_repeat_of_a_lost_submit_with_a_local_file_is_still_recognised(sandbox, tmp_path, monkeypatch):
    """Each upload gets a new URL, so the guard keys a submit by what it was asked (the path):
    the same submit again after one whose answer was lost is put with the warning, and a no
    means neither a second upload nor a second job."""
    from agent.core.guard import REPEAT_WARNING

    monkeypatch.chdir(tmp_path)
    pattern(tmp_path / "photo.png", "a")
    sandbox.state.faults.add("malformed_json", ops=["submit"], times=1)  # created, answer garbled
    same = {"endpoint_id": I2I, "arguments": {"image_url": "./photo.png", "prompt": "ink"}}
    script = [calls(call("submit_queue_request", same)), calls(call("submit_queue_request", same)), text("Done.")]

    class Careful(Approver):
        async def __call__(self, request: ApprovalRequest) -> Decision:
            self.requests.append(request)
            return Decision(action="reject" if request.warning else "approve", reason="not twice")

    approver = Careful()
    with ScriptedOpenAI(script) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        events = await run("ink it", approver)
    first, second = [e for e in ends(events) if e.name == "submit_queue_request"]
    assert "SubmitUnknownError" in first.content and second.error
    assert [r.warning for r in approver.requests] == ["", REPEAT_WARNING]
    assert approver.requests[1].uploads == [("image_url", "./photo.png", (tmp_path / "photo.png").stat().st_size)]
    assert len(sandbox.state.queue.jobs) == 1 and len(control(sandbox, "uploads")["uploads"]) == 1
