"""Sending blobs from one store to another: only those the destination lacks, every byte checked.

A blob on a local disk (an outbox, a local store) is uploaded from where it lies, and the
upload checks the bytes sent against the sha256; a remote blob is fetched (and verified) into
a temporary file first, a batch at a time, so the disk never holds more than one batch.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import keys
from .blobs import BlobStore
from .errors import IntegrityError
from .protection import Protection

BATCH = 256
"""Remote blobs fetched to temporary files before each round of uploads."""


@dataclass
class Sent:
    blobs: int = 0
    bytes: int = 0
    present: int = 0
    """Blobs the destination already had (not sent)."""

    def add(self, other: Sent) -> None:
        self.blobs += other.blobs
        self.bytes += other.bytes
        self.present += other.present


def send_blobs(source: BlobStore, guard: Protection, shas: Iterable[str]) -> Sent:
    """Upload to ``guard.blobs`` those of ``shas`` it lacks, read (verified) from ``source``."""
    wanted = set(shas)
    guard.cover(wanted)
    missing = sorted(guard.blobs.missing(wanted))
    sent = Sent(present=len(wanted) - len(missing))
    for start in range(0, len(missing), BATCH):
        batch = missing[start:start + BATCH]
        with tempfile.TemporaryDirectory(prefix="registry-send-") as temp:
            sources = _local_sources(source, batch, Path(temp))
            try:
                uploaded = guard.upload_missing(dict(sources))
            except IntegrityError:  # a local source's bytes did not match the sha256 they are filed under
                raise IntegrityError(
                    f"a blob of {source.backend.url} does not match its sha256: the source copy is corrupt "
                    "(`registry verify` finds it); nothing that references it was written"
                ) from None
            sent.blobs += len(uploaded)
            sent.bytes += sum(os.path.getsize(sources[sha]) for sha in uploaded)
    return sent


def _local_sources(source: BlobStore, shas: list[str], temp: Path) -> dict[str, Path]:
    """``sha -> a local file holding it``: the blob itself on a local store, else a verified download."""

    def one(sha: str) -> tuple[str, Path]:
        path = source.backend.local_path(keys.blob(sha))
        if path is not None and path.is_file():
            return sha, path  # the upload checks these bytes against ``sha``
        dest = temp / sha
        source.fetch(sha, dest, what=f"blob {sha[:12]}")
        return sha, dest

    if not shas:
        return {}
    with ThreadPoolExecutor(max_workers=min(source.workers, len(shas))) as pool:
        return dict(pool.map(one, shas))
