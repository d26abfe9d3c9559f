"""Garbage-collector settings for the long-running webhook processes (listener and checker).

A delivery allocates a few hundred short-lived objects and no reference cycles worth chasing,
while the modules loaded at startup (pydantic, Starlette, uvicorn, SQLite bindings) are
hundreds of thousands of objects that live as long as the process. With CPython's defaults a
young collection runs every 700 allocations, i.e. every couple of deliveries, and each full
collection walks every one of those long-lived objects: a measurable share of the throughput,
and pauses that set the p99 (docs/webhooks-performance.md has the figures).

``for_serving`` collects once, moves everything alive into the permanent generation
(``gc.freeze``: the collector no longer walks it) and collects young objects every 10,000
allocations instead of 700. Cycles are still found, just later; memory stays bounded.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 50, 100)


def for_serving() -> None:
    """Tune this process's collector once its code is loaded (see the module docstring)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
