"""Sending blobs from one store to another: only those the destination lacks, every byte checked.

A blob on a local disk (an outbox, a local store) is uploaded from where it lies, and the
upload checks the bytes sent against the sha256; a remote blob is fetched (and verified) into
a temporary file first, one per worker, then uploaded and deleted.
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
    """Upload to ``guard.blobs`` those of ``shas`` it lacks, read (verified) from ``source``.

    Each worker takes one blob from download to upload, so reading and writing overlap and the
    disk holds at most one temporary file per worker.
    """
    wanted = set(shas)
    guard.cover(wanted)  # named in the marker before we look at what exists
    missing = sorted(guard.blobs.missing(wanted))
    sent = Sent(blobs=len(missing), present=len(wanted) - len(missing))
    if missing:
        with tempfile.TemporaryDirectory(prefix="registry-send-") as temp, \
                ThreadPoolExecutor(max_workers=min(source.workers, len(missing))) as pool:
            sent.bytes = sum(pool.map(lambda sha: _send_one(source, guard.blobs, sha, Path(temp)), missing))
    return sent


def _send_one(source: BlobStore, dest: BlobStore, sha: str, temp: Path) -> int:
    """Copy one blob; a local source file is uploaded in place (the upload checks its bytes), a
    remote one is downloaded (and verified) to a temporary file first."""
    path = source.backend.local_path(keys.blob(sha))
    fetched = path is None or not path.is_file()
    if fetched:
        path = temp / sha
        source.fetch(sha, path, what=f"blob {sha[:12]}")
    assert path is not None
    try:
        size = os.path.getsize(path)
        dest.upload({sha: path})
    except IntegrityError:  # a local source's bytes did not match the sha256 they are filed under
        raise IntegrityError(
            f"blob {keys.blob(sha)} of {source.backend.url} does not match its sha256: the source copy is "
            "corrupt (`registry verify` finds it); nothing that references it was written"
        ) from None
    finally:
        if fetched:
            path.unlink(missing_ok=True)
    return size
