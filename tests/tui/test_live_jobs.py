"""Jobs that move on their own, states as fal reports them, Esc, and the app's error edge."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Label, ProgressBar

from agent.core.events import Token, ToolEnd, ToolStart, TurnEnd
from agent.tui.chat import ErrorMessage, NoticeMessage
from agent.tui.jobs import JobRow
from agent.tui.media_view import MediaPreview
from agent.tui.progress import JobUpdate
from tests.tui.conftest import make_app, send, wait_for
from tests.tui.fakes import FakeFactory, FakeRunner, png_data_url

EP = "fal-ai/flux/dev"


# -- the tick race, at its root -----------------------------------------------------------------
def test_row_takes_updates_before_it_is_mounted():
    """The timer, a follower or a webhook may reach a row before it is on screen (the crash)."""
    row = JobRow("req-early", EP, started=10.0)
    row.tick(11.0)  # raised NoMatches('.job-elapsed') before the fix
    row.apply(JobUpdate("req-early", EP, "IN_PROGRESS", None, 3, 10, "step 3/10"), 12.0)
    row.set_result({"images": []}, "done", 13.0)
    row.note("a note")
    assert row.status == "COMPLETED" and row.finished == 13.0


async def test_tick_during_mount_then_row_paints_its_state():
    app = make_app(FakeFactory())
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.jobs
        # A row registered but not mounted yet, exactly as row_for leaves it while it awaits mount.
        early = JobRow("req-tick", EP, started=100.0)
        panel.rows["req-tick"] = early
        early.apply(JobUpdate("req-tick", EP, "IN_QUEUE", 2), 100.0)
        panel._tick()
        await panel.mount(early)
        await pilot.pause()
        status = str(early.query_one(".job-status", Label).content)
        assert status == "IN_QUEUE · queue position 2"
        assert app.is_running


# -- background following -----------------------------------------------------------------------
class FakeClient:
    """What follow_job reads: a status stream, status polls, the result."""

    def __init__(self, statuses: list[dict[str, Any]], result: Any = None,
                 result_error: Exception | None = None) -> None:
        self.statuses, self.result_value, self.result_error = statuses, result, result_error
        self.release = asyncio.Event()
        self.release.set()
        self.result_calls = 0

    async def stream_status(self, endpoint_id, request_id, *, logs=True, deadline_s=None):
        for data in self.statuses:
            await self.release.wait()
            yield {**data, "request_id": request_id}

    async def status(self, endpoint_id, request_id, *, logs=False):
        return self.statuses[-1]

    async def result(self, endpoint_id, request_id):
        self.result_calls += 1
        if self.result_error is not None:
            raise self.result_error
        return self.result_value


class _Factory(FakeFactory):
    """Fake runtimes that carry a fake fal client, so the app follows jobs."""

    def __init__(self, client: FakeClient) -> None:
        super().__init__()
        self.client = client

    async def __call__(self, settings, persona):
        rt = await super().__call__(settings, persona)
        rt.client = self.client
        return rt


def _runtime_with(client: FakeClient) -> FakeFactory:
    return _Factory(client)


LIVE = [{"status": "IN_QUEUE", "queue_position": 1, "logs": None},
        {"status": "IN_PROGRESS", "logs": [{"message": "step 4/8"}]},
        {"status": "COMPLETED", "logs": [], "metrics": {"inference_time": 0.8}}]


async def test_followed_job_moves_completes_and_previews_once():
    image = {"images": [{"url": png_data_url(), "width": 16, "height": 16, "content_type": "image/png"}]}
    client = FakeClient(LIVE, result=image)
    client.release.clear()
    app = make_app(_runtime_with(client))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await app.jobs.row_for("req-live", EP, submitted=True)
        app.follow(EP, "req-live")
        app.follow(EP, "req-live")  # once per request
        row = app.jobs.rows["req-live"]
        assert not row.is_done
        client.release.set()
        await wait_for(pilot, lambda: row.outcome == "completed", what="completed")
        await wait_for(pilot, lambda: len(app.query(MediaPreview)) == 1, what="preview")
        assert client.result_calls == 1
        assert row.status == "COMPLETED" and row.result == image
        bar = row.query_one(ProgressBar)
        assert bar.total == bar.progress == 1
        # The webhook for the same job arrives afterwards: no second image.
        from types import SimpleNamespace

        from agent.tui.webhooks import show_webhook

        notice = SimpleNamespace(request_id="req-live", status="OK", kind="received", endpoint_id=EP,
                                 detail="", data={"payload": image})
        await show_webhook(app, notice)
        await pilot.pause()
        assert len(app.query(MediaPreview)) == 1
        assert "req-live" not in app.following


async def test_cancelled_job_shows_cancelled_without_a_full_bar():
    statuses = [{"status": "IN_QUEUE", "queue_position": 0, "logs": None},
                {"status": "COMPLETED", "logs": [], "error": "Request was cancelled by the user.",
                 "error_type": "request_cancelled"}]
    app = make_app(_runtime_with(FakeClient(statuses)))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await app.jobs.row_for("req-c", EP, submitted=True)
        app.follow(EP, "req-c")
        row = app.jobs.rows["req-c"]
        await wait_for(pilot, lambda: row.outcome == "cancelled", what="cancelled")
        assert row.status == "CANCELLED"
        assert row.query_one(ProgressBar).progress == 0
        assert "cancelled" in str(row.query_one(".job-result", Label).content).lower()


async def test_failed_result_is_failed_not_completed():
    from tools.fal.errors import RequestFailedError

    statuses = [{"status": "COMPLETED", "logs": [], "error": "bad input", "error_type": "validation"}]
    err = RequestFailedError("request req-f failed: bad input", status=422, request_id="req-f")
    app = make_app(_runtime_with(FakeClient(statuses, result_error=err)))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await app.jobs.row_for("req-f", EP, submitted=True)
        app.follow(EP, "req-f")
        row = app.jobs.rows["req-f"]
        await wait_for(pilot, lambda: row.outcome == "failed", what="failed")
        assert row.status == "ERROR"


# -- cancel outcomes ----------------------------------------------------------------------------
class CancelRunner(FakeRunner):
    """A cancel whose outcome is what fal said: here, too late."""

    outcome = "already_completed"

    async def run_tool(self, name, args, approver):
        self.tool_calls.append((name, dict(args)))
        yield ToolStart("c1", name, args, "destructive")
        artifact = {"outcome": self.outcome, "endpoint_id": args["endpoint_id"],
                    "request_id": args["request_id"], "http_status": 400, "fal_status": "ALREADY_COMPLETED"}
        yield ToolEnd("c1", name, "ALREADY COMPLETED, nothing was cancelled", artifact, False, 0.1)
        yield TurnEnd(answer="")


async def test_cancel_of_a_completed_job_keeps_it_completed():
    factory = FakeFactory()
    app = make_app(factory)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        rt = app.runtime
        rt.runner = CancelRunner(rt.runner.persona, rt.transcript, rt.runner.session_id)
        row = await app.jobs.row_for("req-done", EP, submitted=True)
        row.set_result({"images": []}, "0 files", app.clock())
        row.post_message(JobRow.CancelPressed("req-done", EP))
        await wait_for(pilot, lambda: rt.runner.tool_calls, what="cancel call")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        assert rt.runner.tool_calls == [("cancel_queue_request", {"endpoint_id": EP, "request_id": "req-done"})]
        assert row.status == "COMPLETED" and row.outcome == "completed"
        assert "too late" in str(row.query_one(".job-result", Label).content)
        assert app.focused is app.query_one("#prompt")


# -- Esc with a submitted job still running -----------------------------------------------------
class SubmitThenHang(FakeRunner):
    async def run_turn(self, text, approver):
        args = {"endpoint_id": EP, "arguments": {"prompt": "x"}}
        yield ToolStart("s1", "submit_queue_request", args, "spend")
        yield ToolEnd("s1", "submit_queue_request", "Submitted req-run", {"request_id": "req-run"}, False, 0.1)
        yield ToolStart("w1", "stream_queue_status", {"endpoint_id": EP, "request_id": "req-run"})
        yield Token("watching")
        self.started.set()
        await asyncio.Event().wait()


async def test_escape_says_which_submitted_jobs_still_run():
    app = make_app(FakeFactory())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        rt = app.runtime
        rt.runner = SubmitThenHang(rt.runner.persona, rt.transcript, rt.runner.session_id)
        await send(pilot, "go")
        await wait_for(pilot, lambda: rt.runner.started.is_set(), what="turn waiting")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="cancelled")
        notice = [str(w.content) for w in app.query(NoticeMessage)][-1]
        assert "still working on 1 job" in notice and "req-run"[:8] in notice and "/cancel" in notice
        row = app.jobs.rows["req-run"]
        assert not row.is_done and row.status == "IN_QUEUE"  # what fal last said, not "cancelled"
        stopped = [c for c in app.query("ToolCard") if c.tool_name == "stream_queue_status"][0]
        assert "stopped by Esc" in stopped.content


# -- the app's edge -----------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict]] = []

    def record(self, kind, data, duration_s=None):
        self.rows.append((kind, data))

    def settle(self):
        return None


class Boom(FakeRunner):
    async def run_turn(self, text, approver):
        yield Token("about to fail")
        raise RuntimeError("widget exploded")


async def test_unexpected_error_is_an_error_not_a_cancellation():
    app = make_app(FakeFactory())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        rt = app.runtime
        rt.runner = Boom(rt.runner.persona, rt.transcript, rt.runner.session_id)
        rt.runner.log = Recorder()
        await send(pilot, "anything")
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
        errors = [str(w.content) for w in app.query(ErrorMessage)]
        assert any("RuntimeError: widget exploded" in e for e in errors)
        assert rt.runner.log.rows == [("error", {"kind": "ui_error", "where": "turn", "type": "RuntimeError",
                                                 "message": "RuntimeError: widget exploded"})]
        assert not any("cancelled" in str(w.content) for w in app.query(NoticeMessage))
        assert app.is_running
        await send(pilot, "still alive?")  # the app keeps working
        await wait_for(pilot, lambda: app.turn_worker.is_finished, what="second turn")


# -- small terminals ----------------------------------------------------------------------------
async def test_80x24_keeps_prompt_and_narrows_jobs():
    app = make_app(FakeFactory())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await pilot.pause()
        prompt = app.query_one("#prompt")
        assert prompt.region.bottom <= 24 and prompt.region.height >= 3
        assert app.jobs.region.width <= 28 and app.chat.region.width >= 48
        assert "Quit" in str(app.query_one("Footer").query("FooterKey").first().render()) or any(
            b.action == "quit" and b.show for b in app.BINDINGS)
        await pilot.resize_terminal(60, 24)
        await pilot.pause()
        assert not app.jobs.display or app.jobs.region.width == 0
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert app.jobs.region.width == 40


async def test_chat_marks_new_output_after_scrolling_up():
    app = make_app(FakeFactory())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        for i in range(12):
            await app.chat.add(NoticeMessage(f"line {i}"))
        await pilot.pause()
        assert app.chat.at_end() and not app.chat.marker.display
        await pilot.press("pageup")
        await pilot.pause()
        assert not app.chat.at_end()
        await app.chat.add(NoticeMessage("newer"))
        await pilot.pause()
        assert app.chat.marker.display and not app.chat.at_end()
        await pilot.press("pagedown", "pagedown", "pagedown", "pagedown")
        await wait_for(pilot, lambda: app.chat.at_end() and not app.chat.marker.display, what="back at end")


# -- slash commands without ids, /quit ----------------------------------------------------------
async def test_slash_without_ids_uses_the_latest_request():
    app = make_app(FakeFactory())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "/status")
        await pilot.pause()
        assert any("no request in this session yet" in str(w.content) for w in app.query(ErrorMessage))
        await app.jobs.row_for("req-old", EP, submitted=True)
        await app.jobs.row_for("req-new", "fal-ai/flux/schnell", submitted=True)
        for command, tool in (("/status", "get_queue_status"), ("/watch", "stream_queue_status"),
                              ("/result", "get_queue_result")):
            await send(pilot, command)
            await wait_for(pilot, lambda tool=tool: app.runtime.runner.tool_calls
                           and app.runtime.runner.tool_calls[-1][0] == tool, what=command)
            await wait_for(pilot, lambda: app.turn_worker.is_finished, what="turn end")
            assert app.runtime.runner.tool_calls[-1][1] == {"endpoint_id": "fal-ai/flux/schnell",
                                                            "request_id": "req-new"}


async def test_quit_command_exits():
    app = make_app(FakeFactory())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.runtime is not None, what="runtime")
        await send(pilot, "/quit")
        await wait_for(pilot, lambda: app.return_code is not None, what="exit")
        assert app.return_code == 0
