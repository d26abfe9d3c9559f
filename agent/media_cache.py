"""Bytes of media already previewed, kept on disk so a reopened chat can show them again.

A result's URLs may not outlive the server that gave them (the stopped app's sandbox serves
its files only while it runs; fal's links expire), so each preview's bytes are written under
`<data dir>/media-cache/`, named by a hash of the URL. Bounded: files past `MAX_FILE_BYTES`
are not kept, and the oldest go once the folder holds more than `MAX_TOTAL_BYTES`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024


def cache_dir() -> Path:
    """`<data dir>/media-cache` (created)."""
    from agent.locations import home

    path = home() / "media-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _path(url: str) -> Path:
    return cache_dir() / hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def cached(url: str) -> bytes | None:
    """The kept bytes of `url`, or None (never for `data:` URLs, which hold their bytes)."""
    if url.startswith("data:"):
        return None
    try:
        return _path(url).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("media cache: cannot read the copy of %s: %s", url[:200], exc)
        return None


def keep(url: str, data: bytes) -> None:
    """Keep the bytes of `url` for later (best effort: a full disk only loses the cache)."""
    if url.startswith("data:") or len(data) > MAX_FILE_BYTES:
        return
    try:
        target = _path(url)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        _prune(target.parent)
    except OSError as exc:
        log.warning("media cache: cannot keep %s: %s", url[:200], exc)


def _prune(folder: Path) -> None:
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files)
    for p in files:
        if total <= MAX_TOTAL_BYTES:
            break
        total -= p.stat().st_size
        p.unlink(missing_ok=True)
