"""Every failure the fal.ai client can raise, as one tree.

::

    FalError                      status, fal_error_type, request_id, message (+ hint)
    ├── InputError                refused before sending: bad endpoint id, empty request id,
    │                             negative quantity, unknown estimate type, bad priority...
    │   ├── ArgumentsInvalid      submit arguments break the endpoint's input schema
    │   │                         (``problems``: one line per field, fit for the model)
    │   └── UploadFileError       the local file to upload cannot be sent:
    │       ├── FileMissingError      no such file
    │       ├── NotAFileError         a directory (or other non-regular file)
    │       ├── FileUnreadableError   no permission, or reading it failed
    │       └── FileTooLargeError     larger than FAL_UPLOAD_MAX_BYTES
    ├── AuthError                 401: missing or wrong FAL_KEY
    │   ├── ForbiddenError        403: the key may not do this
    │   │   └── LockedAccountError  403 "User is locked" (exhausted balance, admin lock)
    ├── NotFoundError             404: unknown app, endpoint or request id
    ├── ValidationError           422 with fal's ``detail`` list; 400 platform validation_error
    ├── RateLimitedError          429 (retry_after_s when the server said)
    ├── ServerError               5xx (and fal infrastructure errors such as runner_disconnected)
    ├── FalTimeoutError           the caller's deadline passed, or the server stopped answering
    ├── TransportError            could not connect, connection dropped
    ├── InvalidResponseError      non-JSON, truncated, or a body missing fields we rely on
    ├── SubmitUnknownError        a submit was sent but its answer was lost or unreadable:
    │                             the request may exist (and be billed); never "retry"
    └── RequestFailedError        the request ran and COMPLETED, but its result is an error
                                  (fal replays the model's status and body, e.g. 422 detail)

An upload that fal refuses or that fails on the way raises the same classes as any other call
(AuthError for a refused token, ServerError for a part that kept failing, ...), with the step
(token, upload, part n/N, complete) named in the message.

A missing input schema is not an error either: :mod:`tools.fal.inputschema` answers
``SchemaUnavailable`` (with a reason) so a caller can still submit without the check.

Cancelling is not an error tree of its own: ``FalClient.cancel`` returns a
:class:`tools.fal.models.CancelResult` whose ``outcome`` is ``requested``,
``already_completed`` or ``not_found``, because all three are normal answers.

Every error raised by the client is raised ``from`` its cause (the httpx exception or the
parse error). Messages are built from fal's answer, with the configured key scrubbed out, so
``str()`` and ``repr()`` of any error never contain the key.
"""

from __future__ import annotations

from typing import Any

from tools.errors import AppError

__all__ = [
    "FalError", "InputError", "ArgumentsInvalid", "UploadFileError", "FileMissingError", "NotAFileError",
    "FileUnreadableError", "FileTooLargeError", "AuthError", "ForbiddenError", "LockedAccountError", "NotFoundError",
    "ValidationError", "RateLimitedError", "ServerError", "FalTimeoutError", "TransportError", "InvalidResponseError",
    "SubmitUnknownError", "RequestFailedError"
]


class FalError(AppError):
    """Base of every fal.ai client error; carries what a user needs to act on it."""

    hint = "Check the request and try again."

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        fal_error_type: str | None = None,
        request_id: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.fal_error_type = fal_error_type
        self.request_id = request_id
        self.detail = detail

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
                f"fal_error_type={self.fal_error_type!r}, request_id={self.request_id!r})")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form used in tool artifacts."""
        out: dict[str, Any] = {
            "type": type(self).__name__,
            "status": self.status,
            "fal_error_type": self.fal_error_type,
            "request_id": self.request_id,
            "message": self.message,
        }
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class InputError(FalError, ValueError):
    """The arguments were refused locally; nothing was sent to fal.ai."""

    hint = "Fix the argument named in the message; nothing was sent."


class ArgumentsInvalid(InputError):
    """Submit arguments that break the endpoint's input schema; nothing was sent.

    ``problems`` holds one readable line per field at fault (unknown, missing, wrong type,
    value not allowed), each naming the field, the expected type and the allowed values.
    """

    hint = "Fix each field listed (the schema's own names, types and values), then submit again."

    def __init__(self, message: str, *, problems: list[str] | None = None,
                 **kw: Any) -> None:
        super().__init__(message, **kw)
        self.problems: list[str] = list(problems or [])
        if self.detail is None:
            self.detail = self.problems


class UploadFileError(InputError):
    """The local file to upload cannot be sent; ``path`` names it. Nothing was sent."""

    hint = "Check the path (an existing, readable regular file) and try again."

    def __init__(self, message: str, *, path: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.path = path


class FileMissingError(UploadFileError):
    """There is no file at that path."""

    hint = "Check the spelling of the path, or give it in full (e.g. /home/me/photo.png)."


class NotAFileError(UploadFileError):
    """The path is a directory or another non-regular file (a device, a pipe)."""

    hint = "Give the path of one file, not a folder; upload files one at a time."


class FileUnreadableError(UploadFileError):
    """The file exists but cannot be read (permissions, an I/O error)."""

    hint = "Check the file's permissions (it must be readable by this user)."


class FileTooLargeError(UploadFileError):
    """The file is larger than the configured limit (``limit_bytes``)."""

    hint = "Upload a smaller file, or raise FAL_UPLOAD_MAX_BYTES if the model takes it."

    def __init__(self, message: str, *, size: int | None = None,
                 limit_bytes: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.size = size
        self.limit_bytes = limit_bytes


class AuthError(FalError):
    """fal.ai did not accept the key (401)."""

    # The error cannot tell whether a key was sent, so the hint must hold either way (never
    # "unset FAL_KEY" to someone who has not set it).
    hint = ("If FAL_KEY is set, check it holds a valid 'key_id:key_secret' key from fal.ai; if it is "
            "not set, set it, or leave FAL_QUEUE_BASE_URL and FAL_API_BASE_URL unset as well to use "
            "the built-in sandbox.")


class ForbiddenError(AuthError):
    """The key is valid but may not do this (403)."""

    hint = "Use a key with access to this endpoint, or check the account on fal.ai."


class LockedAccountError(ForbiddenError):
    """The fal.ai account is locked, e.g. its balance is exhausted (403)."""

    hint = "Top up or unlock the fal.ai account (see fal.ai billing), then retry."


class NotFoundError(FalError):
    """The app, endpoint or request id is unknown (404)."""

    hint = "Check the endpoint id (e.g. search_models) and the request id from the submit."


class ValidationError(FalError):
    """fal.ai rejected the input (422 detail list, or a 400 validation_error)."""

    hint = "Fix the fields listed in the detail and send again."


class RateLimitedError(FalError):
    """Too many requests (429); ``retry_after_s`` is set when the server said how long to wait."""

    hint = "Wait a little and retry."

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, Any]:
        """Adds ``retry_after_s``."""
        return {**super().to_dict(), "retry_after_s": self.retry_after_s}


class ServerError(FalError):
    """fal.ai or the model's runner failed (5xx)."""

    hint = "This is on fal.ai's side; retry later or try another endpoint."


class FalTimeoutError(FalError):
    """No answer within the deadline (or the server stopped answering)."""

    hint = "Retry with a longer timeout; the request itself may still be running."


class TransportError(FalError):
    """The connection failed or dropped before an answer arrived."""

    hint = ("Check the network and the base URLs (FAL_QUEUE_BASE_URL, FAL_API_BASE_URL; "
            "FAL_REST_BASE_URL and FAL_CDN_BASE_URL for uploads).")


class InvalidResponseError(FalError):
    """fal.ai answered with something that is not the JSON we expect (non-JSON, truncated)."""

    hint = "Retry; if it persists, the API may have changed or a proxy is in the way."


class SubmitUnknownError(FalError):
    """A submit reached fal.ai (or may have), but no usable answer came back."""

    hint = ("Do not submit again: the request may have been created and billed. Wait for its "
            "webhook, or ask the user to check fal.ai's dashboard before submitting again.")


class RequestFailedError(FalError):
    """The queued request COMPLETED with an error; ``detail`` holds fal's error body."""

    hint = "Read the detail, fix the arguments, and submit a new request."
