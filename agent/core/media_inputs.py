"""A submit's arguments against the endpoint's input schema, and its local files, for the guard.

Before a submit is put to approval (`SubmitInputs.plan`):

- its arguments are checked against the endpoint's input schema (`FalClient.check_arguments`):
  unknown fields, missing required ones, wrong types and values outside the enum refuse the
  call, naming each field, before anyone is asked and before anything is spent;
- every media field (the schema says which: `image_url`, `image_urls`, `audio_url`...) that
  holds a local path, or `@path`, is found and checked (a missing or unreadable file refuses
  the call, naming the path); the approval lists them with their sizes;
- the schema's defaults for the fields the call leaves out are shown in the approval; when no
  schema can be had, the approval says the arguments go unchecked.

Once approved (`SubmitInputs.upload`), the files are uploaded to fal's CDN one after another
(a large one in parallel parts) and each path is replaced by its URL; then the submit runs.
Sending a local file off the machine is the `upload_file` tool's kind of act, so a persona
whose scope lacks `upload_file` has a submit with local files refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tools.errors import AppError
from tools.registry import SUBMIT, UPLOAD

if TYPE_CHECKING:  # the client side's types; imported lazily so agent.core stays light
    from agent.core.events import ApprovalRequest
    from tools.fal.config import FalConfig
    from tools.fal.files import Lifecycle, LocalFile
    from tools.fal.inputschema import InputSchema, SchemaUnavailable
    from tools.fal.upload import Source, UploadedFile

__all__ = [
    "NO_SCHEMA", "FalInputs", "LocalInput", "SubmitPlan", "InputsRefused", "InputsFailed", "SubmitInputs",
    "upload_rows", "approval_lines"
]


_URL = re.compile(r"(?i)(https?|data|s3|gs|ftp):")
NO_SCHEMA = "no input schema: arguments unchecked"


class FalInputs(Protocol):
    """What the guard needs of the fal client (`tools.fal.client.FalClient` is one)."""

    config: FalConfig

    async def check_arguments(self, endpoint_id: str,
                              arguments: dict[str, Any]) -> InputSchema | SchemaUnavailable: ...

    async def upload(self, source: Source, *, file_name: str | None = None,
                     content_type: str | None = None,
                     lifecycle: Lifecycle | None = None) -> UploadedFile: ...


@dataclass(frozen=True)
class LocalInput:
    """One local file a submit's media field names: uploaded once the call is approved."""

    name: str
    """The argument's key, e.g. `image_url`."""
    index: int | None
    """Its position in a list field (`image_urls`), else None."""
    path: str
    """The path as the call wrote it, without a leading `@`."""
    file: LocalFile

    @property
    def label(self) -> str:
        """`image_url`, or `image_urls[1]` for an item of a list field."""
        return self.name if self.index is None else f"{self.name}[{self.index}]"


@dataclass(frozen=True)
class SubmitPlan:
    """What the approver is shown beyond the call itself, and the files to upload."""

    uploads: tuple[LocalInput, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    """The schema's defaults for the fields the call leaves out."""
    schema_note: str = ""
    """Set when no input schema could be had (the arguments go unchecked)."""


class InputsRefused(AppError):
    """The submit may not run as asked (nothing was asked, uploaded or sent); `message` is
    what the model reads, `error_type` and `facts` go into the call's failure artifact."""

    def __init__(self, message: str, error_type: str, facts: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.facts: dict[str, Any] = dict(facts or {})


class InputsFailed(AppError):
    """Uploading a submit's local files failed after approval; nothing was submitted."""


def _local_value(value: Any) -> str | None:
    """The path a media value names when it is not a URL (`@` stripped), else None."""
    if not isinstance(value, str) or not value.strip() or _URL.match(value.strip()):
        return None
    text = value.strip()
    return text[1:] if text.startswith("@") and len(text) > 1 else text


def _named_media(arguments: Mapping[str, Any]) -> list[str]:
    """Without a schema: the fields whose names say they take media URLs."""
    return [k for k in arguments if isinstance(k, str) and (k.endswith(("_url", "_urls")) or k in ("url", "urls"))]


def _found(arguments: Mapping[str, Any], names: list[str]) -> list[tuple[str, int | None, str]]:
    out: list[tuple[str, int | None, str]] = []
    for name in names:
        value = arguments.get(name)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            path = _local_value(item)
            if path is not None:
                out.append((name, index, path))
    return out


def _refusal_text(endpoint: str, problems: list[str], hint: str) -> str:
    lines = "\n".join(f"- {p}" for p in problems)
    return (f"Error: {SUBMIT}: the arguments for {endpoint} do not fit its input schema: "
            f"{'; '.join(problems)}\n{lines}\nRefused before approval: nothing was submitted. {hint}")


class SubmitInputs:
    """The guard's view of a submit's inputs, for one session.

    `fal` checks and uploads; `may_upload` is whether the session's tools include
    `upload_file` (the persona's scope, as built)."""

    def __init__(self, fal: FalInputs, *, may_upload: bool) -> None:
        self.fal = fal
        self.may_upload = may_upload

    async def plan(self, args: Mapping[str, Any]) -> SubmitPlan:
        """Check a submit's `args` (endpoint_id, arguments); InputsRefused says why it may not run."""
        from tools.fal.errors import ArgumentsInvalid, FalError, InputError, UploadFileError
        from tools.fal.files import check_file
        from tools.fal.inputschema import InputSchema

        endpoint, arguments = args.get("endpoint_id"), args.get("arguments")
        if not isinstance(endpoint, str) or not endpoint.strip() or not isinstance(arguments, dict):
            return SubmitPlan()  # the tool's own argument check answers these
        note = ""
        try:
            schema: InputSchema | SchemaUnavailable | None = await self.fal.check_arguments(endpoint, arguments)
        except ArgumentsInvalid as exc:
            raise InputsRefused(_refusal_text(endpoint, exc.problems, exc.hint), "ArgumentsInvalid",
                                {"problems": list(exc.problems), "endpoint_id": endpoint}) from None
        except InputError as exc:
            raise InputsRefused(f"Error: {SUBMIT}: {exc.message}.\nRefused before approval: nothing was "
                                f"submitted. {exc.hint}", type(exc).__name__) from None
        except (FalError, OSError) as exc:  # the check itself broke: say so, let the human decide
            schema = None
            note = f"{NO_SCHEMA} (the check failed: {type(exc).__name__})"
        if isinstance(schema, InputSchema):
            found = [(n, i, _local_value(v) or v) for n, i, v in schema.local_files(arguments)]
            given = set(arguments)
            defaults = {k: v for k, v in schema.defaults.items() if k not in given}
        else:
            found, defaults = _found(arguments, _named_media(arguments)), {}
            if schema is not None:
                note = f"{NO_SCHEMA} ({schema.reason})"
        if found and not self.may_upload:
            fields = ", ".join(n if i is None else f"{n}[{i}]" for n, i, _ in found)
            raise InputsRefused(
                f"Error: {SUBMIT}: {fields} names a local file, and this persona may not upload files "
                f"({UPLOAD} is outside its scope).\nRefused before approval: nothing was submitted. "
                "Pass a URL the model can fetch instead.", "UploadOutOfScope",
                {"fields": fields})
        limit = self.fal.config.upload_max_bytes
        uploads = []
        for name, index, path in found:
            label = name if index is None else f"{name}[{index}]"
            try:
                local = check_file(path, limit)
            except UploadFileError as exc:
                raise InputsRefused(
                    f"Error: {SUBMIT}: {label} names a local file to upload, but {exc.message}.\n"
                    f"Refused before approval: nothing was uploaded or submitted. {exc.hint}",
                    type(exc).__name__, {"field": label, "path": path}) from None
            uploads.append(LocalInput(name, index, path, local))
        return SubmitPlan(tuple(uploads), defaults, note)

    async def upload(self, args: dict[str, Any], plan: SubmitPlan,
                     on_done: Callable[[dict[str, Any]], None] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Upload each planned file and return (`args` with each path replaced by its URL, one
        record per file: field, file name, size, URL, content type, parts). `on_done(record)`,
        when given, hears of each file as it lands. InputsFailed when one cannot be sent."""
        from tools.fal.errors import FalError

        arguments = dict(args.get("arguments") or {})
        records: list[dict[str, Any]] = []
        for item in plan.uploads:
            try:
                sent = await self.fal.upload(item.file.path, file_name=item.file.name)
            except FalError as exc:
                raise InputsFailed(f"Error: uploading {item.label} ({item.path}) failed: {type(exc).__name__}: "
                                   f"{exc.message}. Nothing was submitted. {exc.hint}") from exc
            if item.index is None:
                arguments[item.name] = sent.url
            else:
                values = list(arguments.get(item.name) or [])
                values[item.index] = sent.url
                arguments[item.name] = values
            record = {"field": item.label, "path": item.path, "file_name": sent.file_name,
                      "size": sent.size, "url": sent.url, "content_type": sent.content_type,
                      "multipart": sent.multipart, "parts": sent.parts}
            records.append(record)
            if on_done is not None:
                on_done(record)
        return {**args, "arguments": arguments}, records


def upload_rows(plan: SubmitPlan | None) -> list[tuple[str, str, int]]:
    """(field, path, size) of each file a plan will upload, for an ApprovalRequest."""
    return [(u.label, u.path, u.file.size) for u in plan.uploads] if plan is not None else []


def approval_lines(request: ApprovalRequest) -> list[str]:
    """What an approval shows of a submit's inputs: each file it uploads once approved (with
    its size), the schema's defaults for the fields left out, or that no schema checked it."""
    import json

    from tools.fal.files import human_size

    lines = [f"uploads {name}: {path} ({human_size(int(size))}); its URL replaces the path"
             for name, path, size in request.uploads]
    if request.defaults:
        lines.append(f"defaults: {json.dumps(request.defaults, default=str, ensure_ascii=False)}")
    if request.schema_note:
        lines.append(request.schema_note)
    return lines
