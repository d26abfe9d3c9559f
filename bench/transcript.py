"""Transcript write cost, measured side by side in one run.

Runs `TranscriptStore.record()` on typical payloads (a prompt, a tool call, a ~2 KB tool result)
with logging on, with logging off, and the redaction step alone, and prints microseconds per
record and the ratios. Goal: well under 1 ms per record with logging on.

    .venv/bin/python bench/transcript.py [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

PAYLOADS = [
    ("user_prompt", {"text": "search flux then estimate 4 images then submit"}),
    ("tool_call", {"name": "submit_queue_request", "call_id": "call_1",
                   "args": {"endpoint_id": "fal-ai/flux/dev",
                            "arguments": {"prompt": "a cat on a skateboard", "num_images": 4}}}),
    ("tool_result", {"name": "search_models", "call_id": "call_2", "content": "Found 10 models",
                     "artifact": {"models": [{"endpoint_id": f"fal-ai/model-{i}",
                                              "metadata": {"display_name": f"Model {i}",
                                                           "category": "text-to-image",
                                                           "description": "x" * 120}}
                                             for i in range(10)]}}),
]


def _time_records(store, n: int) -> list[float]:
    sid = store.new_session("bench", "producer", source="bench")
    samples = []
    for i in range(n):
        kind, data = PAYLOADS[i % len(PAYLOADS)]
        t0 = time.perf_counter()
        store.record(sid, kind, data, user="bench", persona="producer", duration_s=0.01)
        samples.append(time.perf_counter() - t0)
    return samples


def _time_redact(n: int) -> list[float]:
    from agent.redact import redact

    samples = []
    for i in range(n):
        _, data = PAYLOADS[i % len(PAYLOADS)]
        t0 = time.perf_counter()
        redact(data)
        samples.append(time.perf_counter() - t0)
    return samples


def _row(label: str, samples: list[float], base: float | None) -> str:
    mean = statistics.fmean(samples) * 1e6
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1] * 1e6
    ratio = f"{mean / base:6.2f}x redaction" if base else ""
    return f"{label:<26} mean {mean:8.1f} us   p99 {p99:8.1f} us   {ratio}"


def main() -> None:
    """Run the three measurements and print them side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FAL_PERSONA_HOME"] = tmp
        os.environ["FAL_KEY"] = "bench-key-id:bench-key-secret-value"
        from agent.transcript import TranscriptStore

        off = _time_records(TranscriptStore(Path(tmp) / "off.sqlite3", enabled=False), n)
        redact_only = _time_redact(n)
        store = TranscriptStore(Path(tmp) / "on.sqlite3")
        _time_records(store, 50)  # warm-up: open, migrate, page cache
        on = _time_records(store, n)
        store.close()
        base = statistics.fmean(redact_only) * 1e6
        print(f"transcript record() x {n}, payloads: prompt / tool call / ~2 KB tool result")
        print(_row("logging off", off, base))
        print(_row("redaction only", redact_only, base))
        print(_row("logging on (WAL, commit)", on, base))
        verdict = "met" if statistics.fmean(on) < 1e-3 else "MISSED"
        print(f"goal: logging on well under 1 ms per record: {verdict} "
              f"({statistics.fmean(on) * 1e3:.3f} ms)")


if __name__ == "__main__":
    main()
