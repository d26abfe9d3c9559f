"""Retry decisions and backoff bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from tools.fal.retry import (
    backoff_delay,
    next_delay,
    parse_retry_after,
    retry_exception,
    retry_status,
)

REQ = httpx.Request("GET", "http://x")


@pytest.mark.parametrize("status", [408, 409, 429, 502, 503, 504])
def test_retryable_statuses(status):
    assert retry_status(status, {})


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 422, 500, 501])
def test_final_statuses(status):
    assert not retry_status(status, {})


def test_user_start_timeout_504_is_final():
    assert not retry_status(504, {"x-fal-request-timeout-type": "user"})


@pytest.mark.parametrize("status, expected", [(429, True), (503, False), (502, False),
                                              (504, False), (408, False), (409, False)])
def test_submit_retries_only_rate_limits(status, expected):
    assert retry_status(status, {}, submit=True) is expected


@pytest.mark.parametrize("exc, idempotent, submit", [
    (httpx.ConnectError("refused", request=REQ), True, True),
    (httpx.ConnectTimeout("slow", request=REQ), True, True),
    (httpx.ReadTimeout("slow", request=REQ), True, False),
    (httpx.ReadError("reset", request=REQ), True, False),
    (httpx.RemoteProtocolError("closed", request=REQ), True, False),
    (httpx.WriteTimeout("slow", request=REQ), True, False),
])
def test_transport_errors(exc, idempotent, submit):
    assert retry_exception(exc) is idempotent
    assert retry_exception(exc, submit=True) is submit


def test_non_transport_exception_not_retried():
    assert not retry_exception(ValueError("x"))


def test_retry_after_seconds_and_date():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True),
                             now=now) == pytest.approx(7.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True),
                             now=now) == 0.0
    assert parse_retry_after("-4") == 0.0
    for junk in (None, "", "soon", "nan"):
        assert parse_retry_after(junk) is None


@pytest.mark.parametrize("attempt", range(0, 12))
def test_backoff_is_bounded_full_jitter(attempt):
    ceiling = min(10.0, 0.1 * 2 ** attempt)
    assert backoff_delay(attempt, rand=lambda: 0.0) == 0.0
    assert backoff_delay(attempt, rand=lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert backoff_delay(attempt, rand=lambda: 1.0) <= 10.0


def test_next_delay_respects_deadline_retries_and_retry_after():
    half = lambda: 0.5  # noqa: E731 - a stand-in for random.random
    assert next_delay(0, 10.0, rand=half) == pytest.approx(0.05)
    assert next_delay(4, 10.0, max_retries=4, rand=half) is None
    assert next_delay(0, 10.0, retry_after_s=2.0) == 2.0
    assert next_delay(0, 1.0, retry_after_s=2.0) is None  # would end past the deadline
    assert next_delay(3, 0.1, rand=lambda: 1.0) is None
