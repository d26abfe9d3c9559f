"""Transcript write cost, measured side by side in one run.

On typical payloads (a prompt, a tool call, a ~2 KB tool result), per row:
  * the data's encoding: the full redaction walk vs `encode_data` (its no-secret fast path);
  * `record()`: one commit per row (how triggers and the CLI write);
  * `prepare()` + `write()` of 3 rows per commit (how the runner writes: rows recorded between
    two shown events share a commit);
  * the deferred FTS indexing, per row indexed.
Goal: well under 1 ms per record with logging on.

    .venv/bin/python bench/transcript.py [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/agent.py would shadow the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
WHO = {"user": "bench", "persona": "producer", "duration_s": 0.01}


def _per_row(fn, n: int) -> list[float]:
    """Seconds per call of fn(i) for i in range(n)."""
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t0)
    return samples


def _batched(store, n: int, group: int) -> list[float]:
    """Seconds per row of prepare+write, `group` rows per commit."""
    sid = store.new_session("bench", "producer", source="bench")
    samples = []
    for start in range(0, n, group):
        t0 = time.perf_counter()
        rows = [store.prepare(sid, *PAYLOADS[i % 3], **WHO) for i in range(start, start + group)]
        store.write(rows)
        samples += [(time.perf_counter() - t0) / group] * group
    return samples


def _row(label: str, samples: list[float]) -> str:
    mean = statistics.fmean(samples) * 1e6
    p99 = sorted(samples)[int(len(samples) * 0.99) - 1] * 1e6
    return f"{label:<34} mean {mean:8.1f} us   p99 {p99:8.1f} us"


def main() -> None:
    """Run the measurements and print them side by side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FAL_PERSONA_HOME"] = tmp
        os.environ["FAL_KEY"] = "bench-key-id:bench-key-secret-value"
        from agent.redact import Redactor, env_secrets
        from agent.transcript.render import encode
        from agent.transcript.sql import encode_data as fast
        from agent.transcript.sql import index_pending
        from agent.transcript.store import TranscriptStore

        red = Redactor.for_secrets(env_secrets())
        full = _per_row(lambda i: encode(red(dict(PAYLOADS[i % 3][1])), red), n)
        quick = _per_row(lambda i: fast(PAYLOADS[i % 3][1], red), n)
        off = TranscriptStore(Path(tmp) / "off.sqlite3", enabled=False)
        sid = off.new_session("bench", "producer")
        logging_off = _per_row(lambda i: off.record(sid, *PAYLOADS[i % 3], **WHO), n)

        store = TranscriptStore(Path(tmp) / "on.sqlite3")
        sid = store.new_session("bench", "producer", source="bench")
        _per_row(lambda i: store.record(sid, *PAYLOADS[i % 3], **WHO), 50)  # warm-up
        one = _per_row(lambda i: store.record(sid, *PAYLOADS[i % 3], **WHO), n)
        grouped = _batched(store, n, 3)
        db = store._db()  # the bench measures the indexer on the store's own connection
        waiting = db.execute("SELECT count(*) FROM events WHERE id > "
                             "(SELECT last_id FROM fts_watermark)").fetchone()[0]
        t0 = time.perf_counter()
        indexed = index_pending(db)
        per_indexed = (time.perf_counter() - t0) / max(1, indexed)
        store.close()
        print(f"transcript writes x {n}, payloads: prompt / tool call / ~2 KB tool result")
        print(_row("logging off", logging_off))
        print(_row("encode: full redaction walk", full))
        print(_row("encode: fast path (encode_data)", quick))
        print(_row("record(): a commit per row", one))
        print(_row("prepare+write: 3 rows per commit", grouped))
        print(f"{'FTS indexing (deferred), per row':<34} mean {per_indexed * 1e6:8.1f} us"
              f"   ({indexed} rows; {waiting} were waiting)")
        verdict = "met" if statistics.fmean(one) < 1e-3 else "MISSED"
        print(f"goal: logging on well under 1 ms per record: {verdict} "
              f"({statistics.fmean(one) * 1e3:.3f} ms)")


if __name__ == "__main__":
    main()
