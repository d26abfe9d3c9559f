"""The batched intake: many deliveries at once still get one correct answer each."""

from __future__ import annotations

import asyncio

import pytest

from agent.triggers.server import WEBHOOK_PATH
from tests.triggers.support import fal_body


@pytest.fixture(params=["thread", "process"])
def check(request) -> str:
    return request.param


async def test_concurrent_mixed_deliveries_each_get_their_own_answer(make_listener, signer, inbox):
    listener, client = make_listener()
    seen = []
    listener.subscribers.subscribe(lambda n: seen.append((n.kind, n.request_id)))
    cases = []
    for i in range(40):
        rid = f"ok-{i}"
        body = fal_body(rid)
        cases.append(("ok", body, signer.headers(body, rid)))
    for i in range(10):
        rid = f"forged-{i}"
        body = fal_body(rid)
        headers = signer.headers(body, rid)
        cases.append(("forged", body.replace(b"42", b"43"), headers))
    for i in range(10):
        rid = f"bad-{i}"
        body = b'{"request_id": "%s", "status": "MAYBE"}' % rid.encode()
        cases.append(("invalid", body, signer.headers(body, rid)))
    twin = fal_body("twin")
    cases += [("twin", twin, signer.headers(twin, "twin"))] * 2
    # Interleave so every batch holds a mix.
    cases = cases[::2] + cases[1::2]

    async def send(body, headers):
        return await client.post(WEBHOOK_PATH, content=body, headers=headers)

    responses = await asyncio.gather(*(send(b, h) for _, b, h in cases))
    answers: dict[str, list] = {}
    for (kind, _, _), r in zip(cases, responses):
        answers.setdefault(kind, []).append((r.status_code, r.json()))
    assert answers["ok"] == [(200, {"received": True})] * 40
    assert answers["forged"] == [(401, {"error": "bad_signature"})] * 10
    assert answers["invalid"] == [(422, {"error": "invalid_payload"})] * 10
    # The same request id twice in flight: stored once, the other told it is a duplicate.
    assert sorted(answers["twin"], key=str) == [(200, {"duplicate": True}), (200, {"received": True})]
    assert inbox.count() == 41
    assert {row.request_id for row in inbox.list(limit=100)} == {f"ok-{i}" for i in range(40)} | {"twin"}
    assert listener.state.received == 41
    assert sorted(k for k, rid in seen if rid == "twin") == ["duplicate", "received"]
    assert sum(1 for k, _ in seen if k == "received") == 41


@pytest.mark.parametrize("check", ["thread"])  # patches this process's inbox; test_checker.py covers both
async def test_a_storage_failure_answers_503_for_that_batch_and_then_recovers(make_listener, signer,
                                                                           inbox, monkeypatch, check):
    _, client = make_listener()
    real = inbox.add_many
    broken = True

    def flaky(events, **kwargs):
        if broken:
            raise OSError("disk full")
        return real(events, **kwargs)

    monkeypatch.setattr(inbox, "add_many", flaky)
    body = fal_body("r1")
    headers = signer.headers(body, "r1")
    first = await client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert (first.status_code, first.json()) == (503, {"error": "storage_unavailable"})
    assert inbox.count() == 0
    broken = False
    again = await client.post(WEBHOOK_PATH, content=body, headers=headers)  # fal's retry
    assert (again.status_code, again.json()) == (200, {"received": True})
    assert inbox.get("r1") is not None
