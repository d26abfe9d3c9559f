"""The fal.ai LangChain tools, thin adapters over :class:`tools.fal.FalClient`.

Each tool is async (``coroutine=``) and sync (``func=``, run on a shared background loop, see
:mod:`tools.syncrun`), answers ``(content, artifact)``, and is tagged with its kind: ``read``,
``spend``, ``destructive``, or ``upload`` (``upload_file``: free, but it sends a local file
off this machine, so callers should treat it as an outward action). The nine queue/platform
tools are built by default; ``upload_file`` only when asked for (``include_upload=True``)
until the agent's guard knows its kind. A fal error never escapes: it becomes content starting ``Error:`` with what
went wrong and what to do next, and an artifact ``{"error": {...}}``.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.callbacks import adispatch_custom_event
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from tools import render
from tools import schemas as S
from tools.fal import validate as V
from tools.fal.client import FalClient
from tools.fal.config import FalConfig
from tools.fal.errors import FalError, FalTimeoutError, RequestFailedError
from tools.fal.inputschema import compact_fields
from tools.registry import OPTIONAL_TOOLS as _OPTIONAL_TOOLS
from tools.registry import REGISTRY
from tools.registry import TOOL_KINDS as _TOOL_KINDS
from tools.syncrun import run_sync

__all__ = ["Result", "Handler", "STATUS_EVENT", "OPTIONAL_TOOLS", "TOOL_KINDS", "build_fal_tools", "build_fal_tool"]


Result = tuple[str, Any]
Handler = Callable[[FalClient, Any], Awaitable[Result]]
STATUS_EVENT = "fal_queue_status"


class _ClientHolder:
    """Creates the FalClient on first use, so building the tools opens nothing."""

    def __init__(self, config: FalConfig | None, client: FalClient | None) -> None:
        self._config, self._client = config, client
        self._lock = threading.Lock()

    def get(self) -> FalClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = FalClient(self._config if self._config is not None
                                             else FalConfig())
        return self._client


# -- handlers: (client, validated args) -> (content, artifact) ---------------------------------

async def _submit(fal: FalClient, a: S.SubmitArgs) -> Result:
    sub = await fal.submit(a.endpoint_id, a.arguments, webhook_url=a.webhook_url,
                           priority=a.priority, start_timeout_s=a.start_timeout_s)
    return render.submitted(a.endpoint_id, sub), sub.model_dump(mode="json")


async def _status(fal: FalClient, a: S.StatusArgs) -> Result:
    st = await fal.status(a.endpoint_id, a.request_id, logs=a.logs)
    return render.status(a.endpoint_id, st), st.model_dump(mode="json")


async def _stream(fal: FalClient, a: S.StreamArgs) -> Result:
    updates: list[dict[str, Any]] = []
    last = None
    # The model picks how long to watch, but never past the user's own bound (FAL_DEADLINE_S).
    cap = fal.config.deadline_s
    deadline = min(a.timeout_s, cap)
    try:
        async for st in fal.stream_status(a.endpoint_id, a.request_id, logs=a.logs,
                                          deadline_s=deadline):
            data = {**st.model_dump(mode="json"), "endpoint_id": a.endpoint_id}
            updates.append(data)
            last = st
            await _report(data)
    except FalTimeoutError as err:
        text, artifact = render.error(err, context="stream_queue_status")
        seen = (f"Last status seen: {render.status_line(a.endpoint_id, last)}" if last
                else "No status arrived.")
        artifact.update(last_status=updates[-1] if updates else None, updates=len(updates))
        bound = (f"the {deadline:g}s wait ran out (timeout_s {a.timeout_s:g}, capped by "
                 f"FAL_DEADLINE_S={cap:g})" if a.timeout_s > cap else f"the {deadline:g}s wait ran out")
        artifact.update(waited_s=deadline)
        return (f"{text}\n{seen} {bound[0].upper() + bound[1:]}. The request keeps running on fal.ai; "
                "call stream_queue_status again or get_queue_status later."), artifact
    final = updates[-1] if updates else None
    text = render.status(a.endpoint_id, last) if last else "The stream ended without a status."
    return f"{len(updates)} update(s). Final: {text}", {"final": final, "updates": updates}


async def _report(data: dict[str, Any]) -> None:
    """Send one status update to whoever listens: callbacks and a LangGraph stream writer."""
    try:
        await adispatch_custom_event(STATUS_EVENT, data)
    except RuntimeError:
        pass  # called outside a LangChain run: nobody to tell
    writer = _stream_writer()
    if writer is not None:
        writer({"type": STATUS_EVENT, "data": data})


def _stream_writer() -> Callable[[Any], None] | None:
    try:
        from langgraph.config import get_stream_writer

        return get_stream_writer()
    except (ImportError, RuntimeError, KeyError, AttributeError):
        return None  # not inside a LangGraph run


async def _result(fal: FalClient, a: S.RequestArgs) -> Result:
    try:
        output = await fal.result(a.endpoint_id, a.request_id)
    except RequestFailedError as err:
        pending = await _not_finished(fal, a, err)
        if pending is not None:
            return pending
        _, artifact = render.error(err)
        artifact["failed"] = True
        return render.failed_result(a.endpoint_id, err), artifact
    return render.result(a.endpoint_id, a.request_id, output), output


async def _not_finished(fal: FalClient, a: S.RequestArgs, err: FalError) -> Result | None:
    """When the result call failed because the request has not COMPLETED yet, say so.

    fal answers a too-early result call with a 4xx too; calling that a failed request would
    send the agent to resubmit (and pay twice) for a job that is still running.
    """
    try:
        st = await fal.status(a.endpoint_id, a.request_id)
    except FalError:
        return None  # cannot tell: report what the result call said
    if st.status == "COMPLETED":
        return None
    _, artifact = render.error(err, context="get_queue_result")
    artifact.update(pending=True, status=st.model_dump(mode="json"))
    return (f"Error: the result of {a.request_id} on {a.endpoint_id} is not ready: the request "
            f"is still {st.status} (it has not failed).\nNext: stream_queue_status to wait for "
            "COMPLETED, then get_queue_result again. Do not resubmit."), artifact


async def _cancel(fal: FalClient, a: S.RequestArgs) -> Result:
    res = await fal.cancel(a.endpoint_id, a.request_id)
    return render.cancelled(res), res.model_dump(mode="json")


async def _search(fal: FalClient, a: S.SearchArgs) -> Result:
    page = await fal.models(query=a.query, category=a.category, status=a.status,
                            endpoint_ids=a.endpoint_ids, limit=a.limit, cursor=a.cursor,
                            expand_openapi=a.expand_openapi or a.input_fields)
    artifact = page.model_dump(mode="json")
    text = render.models_table(page)
    if a.input_fields:
        fields = {m.endpoint_id: compact_fields(m.endpoint_id, m.openapi) for m in page.models}
        for item in artifact["models"]:
            item["input_fields"] = fields.get(item["endpoint_id"])
            if not a.expand_openapi:
                item.pop("openapi", None)  # the short form was asked for, not the document
        text = render._clip(text + "\n" + render.input_fields(fields), 16000)
    return text, artifact


async def _pricing(fal: FalClient, a: S.PricingArgs) -> Result:
    resp = await fal.pricing(a.endpoint_ids)
    return render.prices(resp), resp.model_dump(mode="json")


async def _estimate(fal: FalClient, a: S.EstimateArgs) -> Result:
    body = V.estimate_body(a.estimate_type, a.endpoints)
    resp = await fal.estimate(a.estimate_type, a.endpoints)
    return render.estimate(resp, body), resp.model_dump(mode="json")


async def _upload(fal: FalClient, a: S.UploadArgs) -> Result:
    up = await fal.upload(a.path, content_type=a.content_type, lifecycle=a.lifecycle)
    return render.uploaded(up), up.model_dump(mode="json")


async def _jwks(fal: FalClient, a: S.JwksArgs) -> Result:
    doc = await fal.jwks()
    return render.jwks(doc), doc.model_dump(mode="json")


# -- the catalogue --------------------------------------------------------------------------

# Names, kinds, argument schemas and descriptions live in tools.registry (the one list);
# the catalogue only adds what each tool does.
_HANDLERS: dict[str, Handler] = {
    "search_models": _search, "get_pricing": _pricing, "estimate_pricing": _estimate,
    "get_queue_status": _status, "stream_queue_status": _stream, "get_queue_result": _result,
    "get_webhook_jwks": _jwks, "submit_queue_request": _submit,
    "cancel_queue_request": _cancel, "upload_file": _upload,
}
OPTIONAL_TOOLS: tuple[str, ...] = _OPTIONAL_TOOLS
"""Tools built only on request (see build_fal_tools)."""
TOOL_KINDS: dict[str, str] = dict(_TOOL_KINDS)
"""Every tool's kind, optional ones included: read, spend, destructive or upload."""


def _validation_message(exc: Exception) -> str:
    if isinstance(exc, PydanticValidationError):
        parts = [f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()]
        detail = "; ".join(parts)
    else:
        detail = str(exc)
    return f"Error: invalid arguments ({detail}). Next: fix them and call the tool again."


class _FalTool(StructuredTool):
    """A StructuredTool whose schema failures still come back with an ``{"error": ...}`` artifact.

    LangChain's own check answers a bad call with content only; handing the raw arguments to
    the tool instead lets its coroutine (which validates them again) answer with both.
    """

    def _parse_input(self, tool_input: str | dict[str, Any],
                     tool_call_id: str | None) -> str | dict[str, Any]:
        try:
            return super()._parse_input(tool_input, tool_call_id)
        except PydanticValidationError:
            if isinstance(tool_input, dict):
                return {k: v for k, v in tool_input.items() if isinstance(k, str)}
            raise


def _make_tool(name: str, kind: str, schema: type[BaseModel], handler: Handler,
               description: str, holder: _ClientHolder) -> BaseTool:
    async def coroutine(**kwargs: Any) -> Result:
        try:
            args = schema.model_validate(kwargs)
        except PydanticValidationError as exc:
            return _validation_message(exc), {"error": {"type": "InputError", "status": None,
                                                        "fal_error_type": None,
                                                        "request_id": None,
                                                        "message": _validation_message(exc)}}
        try:
            return await handler(holder.get(), args)
        except FalError as err:
            return render.error(err, context=name)

    def func(**kwargs: Any) -> Result:
        return run_sync(coroutine(**kwargs))

    return _FalTool.from_function(
        func=func, coroutine=coroutine, name=name, description=description,
        args_schema=schema, response_format="content_and_artifact",
        tags=["fal", kind], metadata={"kind": kind},
        handle_validation_error=_validation_message)


def build_fal_tools(config: FalConfig | None = None, client: FalClient | None = None, *,
                    include_upload: bool = False) -> list[BaseTool]:
    """The nine fal.ai tools (plus ``upload_file`` with `include_upload`), sharing one client
    (created from ``FalConfig()`` on first use)."""
    holder = _ClientHolder(config, client)
    return [_make_tool(info.name, info.kind, info.schema, _HANDLERS[info.name],
                       info.description, holder)
            for info in REGISTRY.values() if include_upload or not info.optional]


def build_fal_tool(name: str, config: FalConfig | None = None,
                   client: FalClient | None = None) -> BaseTool:
    """One tool by name, optional ones included (handy for tests and slash commands)."""
    for tool in build_fal_tools(config=config, client=client, include_upload=True):
        if tool.name == name:
            return tool
    raise KeyError(name)
