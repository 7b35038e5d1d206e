"""Manifest pages built by a writer and waiting to be uploaded: in memory while they are few,
in a private temp directory beyond a budget.

A million-file version has ~110 MB of pages, all built before the first is sent (the root's
digest decides whether anything is sent at all); holding them on disk keeps a writer's memory
to its entries. ``Protection`` uploads a page from either form, and checks it on the way.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

MEMORY_BUDGET = 32 << 20
"""Bytes of pages held in memory; the rest go to disk."""


class PageSpool:
    """sha256 -> page body (bytes) or the file holding it, for ``Protection.upload_missing``."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = MEMORY_BUDGET if budget is None else budget
        self.pages: dict[str, bytes | Path] = {}
        self._held = 0
        self._dir: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> PageSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put(self, sha256: str, body: bytes) -> None:
        """Keep a page (a ``manifest_pages.PutPage``); one already held is not kept twice."""
        if sha256 in self.pages:
            return
        if self._held + len(body) <= self.budget:
            self.pages[sha256] = body
            self._held += len(body)
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="registry-pages-")
        path = Path(self._dir.name) / sha256
        path.write_bytes(body)
        self.pages[sha256] = path

    def body(self, sha256: str) -> bytes:
        held = self.pages[sha256]
        return held.read_bytes() if isinstance(held, Path) else held

    def close(self) -> None:
        """Drop the pages on disk (call once nothing will upload them again)."""
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
