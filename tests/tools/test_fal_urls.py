"""Endpoint id and request id rules (shared/fal-api.md §2.1)."""

from __future__ import annotations

import pytest

from tools.fal.errors import InputError
from tools.fal.urls import check_request_id, parse_endpoint_id, request_url, submit_url

Q = "https://queue.fal.run"
RID = "6f1e2c1a-0d7b-4b8e-9a55-3c2f0b7d9e11"


@pytest.mark.parametrize("endpoint_id, full, app", [
    ("fal-ai/flux", "fal-ai/flux", "fal-ai/flux"),
    ("fal-ai/flux/dev", "fal-ai/flux/dev", "fal-ai/flux"),
    ("fal-ai/kling-video/v2/master/text-to-video", "fal-ai/kling-video/v2/master/text-to-video",
     "fal-ai/kling-video"),
    ("fal-ai/flux-pro/v1.1-ultra", "fal-ai/flux-pro/v1.1-ultra", "fal-ai/flux-pro"),
    ("workflows/alice/my-flow", "workflows/alice/my-flow", "workflows/alice/my-flow"),
    ("workflows/alice/my-flow/extra", "workflows/alice/my-flow/extra", "workflows/alice/my-flow"),
    ("comfy/bob/graph", "comfy/bob/graph", "comfy/bob/graph"),
    ("1234-my-app", "1234/my-app", "1234/my-app"),
    ("  fal-ai/flux/dev ", "fal-ai/flux/dev", "fal-ai/flux"),
])
def test_valid_ids_map_to_submit_and_request_paths(endpoint_id, full, app):
    eid = parse_endpoint_id(endpoint_id)
    assert (eid.full, eid.app) == (full, app)
    assert submit_url(Q + "/", endpoint_id) == f"{Q}/{full}"
    assert request_url(Q, endpoint_id, RID) == f"{Q}/{app}/requests/{RID}"


def test_parts_are_exposed():
    eid = parse_endpoint_id("workflows/alice/flow/run")
    assert (eid.namespace, eid.owner, eid.alias, eid.path) == ("workflows", "alice", "flow", "run")


@pytest.mark.parametrize("bad", [
    "", "   ", "flux", "fal-ai/", "/fal-ai/flux", "fal-ai//flux", "fal-ai/flux/../x",
    "fal-ai/flux?x=1", "fal-ai/flux#frag", "fal-ai/fl ux", "https://queue.fal.run/fal-ai/flux",
    "fal-ai/%2e%2e", "workflows/alice", "comfy/bob", "-1234-app", "fal-ai/./flux",
])
def test_malformed_ids_are_refused(bad):
    with pytest.raises(InputError) as info:
        parse_endpoint_id(bad)
    assert "endpoint_id" in str(info.value)


def test_non_string_id_refused():
    with pytest.raises(InputError):
        parse_endpoint_id(None)  # type: ignore[arg-type]  # a wrong type on purpose


@pytest.mark.parametrize("bad", ["", "  ", "a/b", "id?x", "a b", "../x", "x" * 200])
def test_bad_request_ids_are_refused(bad):
    with pytest.raises(InputError):
        check_request_id(bad)


def test_request_id_is_stripped():
    assert check_request_id(f" {RID}\n") == RID
