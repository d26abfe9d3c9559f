"""langchain-tests standard suites for each of the nine tools, backed by the fal emulation."""

from __future__ import annotations

from typing import Any

from fal_fakes import DONE_ID, FAILED_ID, QUEUED_ID, FakeFal
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from tools.catalog import build_fal_tool
from tools.fal import FalClient

EP = "fal-ai/flux/dev"
EXAMPLES: dict[str, dict[str, Any]] = {
    "search_models": {"query": "flux", "limit": 5},
    "get_pricing": {"endpoint_ids": [EP, "fal-ai/flux/schnell"]},
    "estimate_pricing": {"estimate_type": "historical_api_price", "endpoints": {EP: 10}},
    "get_queue_status": {"endpoint_id": EP, "request_id": DONE_ID, "logs": True},
    "stream_queue_status": {"endpoint_id": EP, "request_id": QUEUED_ID, "timeout_s": 5},
    "get_queue_result": {"endpoint_id": EP, "request_id": FAILED_ID},
    "get_webhook_jwks": {},
    "submit_queue_request": {"endpoint_id": EP, "arguments": {"prompt": "a red fox"},
                             "priority": "low"},
    "cancel_queue_request": {"endpoint_id": EP, "request_id": QUEUED_ID},
}


class _Base:
    name: str

    @property
    def tool_constructor(self) -> BaseTool:
        fake = FakeFal()
        return build_fal_tool(self.name, client=FalClient(fake.config(),
                                                          transport=fake.transport()))

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return EXAMPLES[self.name]


def _suite(tool_name: str):
    unit = type(f"Test{tool_name}Unit", (_Base, ToolsUnitTests), {"name": tool_name})
    integ = type(f"Test{tool_name}Integration", (_Base, ToolsIntegrationTests),
                 {"name": tool_name})
    return unit, integ


TestSearchUnit, TestSearchIntegration = _suite("search_models")
TestPricingUnit, TestPricingIntegration = _suite("get_pricing")
TestEstimateUnit, TestEstimateIntegration = _suite("estimate_pricing")
TestStatusUnit, TestStatusIntegration = _suite("get_queue_status")
TestStreamUnit, TestStreamIntegration = _suite("stream_queue_status")
TestResultUnit, TestResultIntegration = _suite("get_queue_result")
TestJwksUnit, TestJwksIntegration = _suite("get_webhook_jwks")
TestSubmitUnit, TestSubmitIntegration = _suite("submit_queue_request")
TestCancelUnit, TestCancelIntegration = _suite("cancel_queue_request")
