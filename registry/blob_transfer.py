"""Sending blobs from one store to another: only those the destination lacks, every byte checked.

Blobs on a local disk (an outbox, a local store) are uploaded from where they lie, through the
writer's ``Protection`` (so a concurrent ``gc`` is settled as for any writer), and the upload
checks the bytes sent against the sha256. A remote blob is fetched (and verified) into a
temporary file first, one per worker, then uploaded and deleted.
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
    """Upload to ``guard.blobs`` those of ``shas`` it lacks, read (verified) from ``source``."""
    wanted = set(shas)
    on_disk = _on_disk(source, wanted)
    if len(on_disk) == len(wanted):  # an outbox or a local store: the guard uploads and settles them all
        try:
            uploaded = guard.upload_missing(on_disk)
        except IntegrityError:
            raise _corrupt(source, "a blob") from None
        return Sent(blobs=len(uploaded), bytes=sum(os.path.getsize(on_disk[sha]) for sha in uploaded),
                    present=len(wanted) - len(uploaded))
    guard.cover(wanted)  # named in the marker before we look at what exists
    missing = sorted(guard.blobs.missing(wanted))
    sent = Sent(blobs=len(missing), present=len(wanted) - len(missing))
    if missing:  # each worker takes one blob from download to upload: reads and writes overlap
        with tempfile.TemporaryDirectory(prefix="registry-send-") as temp, \
                ThreadPoolExecutor(max_workers=min(source.workers, len(missing))) as pool:
            sent.bytes = sum(pool.map(lambda sha: _send_one(source, guard.blobs, sha, Path(temp)), missing))
    return sent


def _on_disk(source: BlobStore, shas: set[str]) -> dict[str, Path]:
    found = {}
    for sha in shas:
        path = source.backend.local_path(keys.blob(sha))
        if path is not None and path.is_file():
            found[sha] = path
    return found


def _corrupt(source: BlobStore, what: str) -> IntegrityError:
    return IntegrityError(
        f"{what} of {source.backend.url} does not match its sha256: the source copy is corrupt "
        "(`registry verify` finds it); nothing that references it was written"
    )


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
        raise _corrupt(source, f"blob {keys.blob(sha)}") from None
    finally:
        if fetched:
            path.unlink(missing_ok=True)
    return size
