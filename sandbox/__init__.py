"""A local fal.ai emulator: the queue API, the synchronous run host, the platform API v1,
file uploads (the REST token/storage calls and the v3 CDN, `routes_uploads`), media inputs read
from uploads, data: URIs or loopback URLs (`inputs`), submits checked against each endpoint's
published OpenAPI (`schemas`), and webhook delivery.

It implements /work/shared/fal-api.md on its own and imports nothing from `tools` or `agent`,
so a misunderstanding of the spec cannot hide on both sides of a test.
"""

from __future__ import annotations

__all__ = ["SandboxConfig", "create_app", "start_in_thread"]


def __getattr__(name: str):
    # Lazy, so `import sandbox.clock` stays cheap and free of Starlette.
    if name == "SandboxConfig":
        from sandbox.config import SandboxConfig

        return SandboxConfig
    if name == "create_app":
        from sandbox.app import create_app

        return create_app
    if name == "start_in_thread":
        from sandbox.server import start_in_thread

        return start_in_thread
    raise AttributeError(name)
