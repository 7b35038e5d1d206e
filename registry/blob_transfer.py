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
from .errors import IntegrityError, NotFoundError
from .filelists import page_reader, read_file_list, version_entries
from .hashing import sha256_bytes
from .manifest_pages import page_digests
from .packs import parse_index
from .protection import Protection
from .records import VersionRecord
from .store import Store


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


def send_version(source: Store, guard: Protection, record: VersionRecord) -> tuple[Sent, set[str]]:
    """Send what a version needs (its file list or manifest pages, its blobs, the packs holding
    its chunks) that ``guard``'s store lacks; returns the report and the packs it relies on.

    A source pack found gone (gc rewrote it since its index was loaded) makes the source's pack
    indexes refresh and the packs be looked up again, once."""
    if not record.paged:
        files = read_file_list(source, record)
        sent = send_blobs(source.blobs, guard, {f.sha256 for f in files.files})
        sent.add(send_blobs(source.blobs, guard, {record.digest}))
        return sent, set()
    pages = set(page_digests(page_reader(source, record), record.digest))
    chunks = {c for e in version_entries(source, record) if e.ref is None for c, _ in e.chunk_list()}
    hints = record.packs or ()
    for attempt in range(2):
        located = source.pack_indexes.locate(chunks, hints)
        packs = {loc.pack for loc in located.values()}
        try:
            sent = send_packs(source, guard, packs)
            break
        except PackGone as gone:
            if attempt:
                raise NotFoundError(f"{gone}, even after re-reading its pack indexes: "
                                    "re-log the artifact that holds it") from None
            source.pack_indexes.refresh([gone.pack_id])
            hints = ()
    sent.add(send_blobs(source.blobs, guard, chunks - located.keys()))
    sent.add(send_blobs(source.blobs, guard, pages))
    return sent, packs


class PackGone(NotFoundError):
    """A pack of the source store is missing (a collector removed it)."""

    def __init__(self, source: Store, pack_id: str) -> None:
        super().__init__(f"pack {keys.pack(pack_id)} is missing from {source.url}")
        self.pack_id = pack_id


def send_packs(source: Store, guard: Protection, pack_ids: set[str]) -> Sent:
    """Copy whole packs (and their indexes) the destination lacks: one GET and one PUT per pack,
    the pack checked against its name (the sha256 of its bytes), the index parsed; ``PackGone``
    if one is missing from the source."""
    dest = guard.blobs.backend
    guard.cover(pack_ids)  # named in the marker before we look at what exists
    todo = sorted(p for p in pack_ids if not (dest.exists(keys.pack(p)) and dest.exists(keys.pack_index(p))))

    def one(pack_id: str) -> int:
        try:
            body = source.backend.read(keys.pack(pack_id))
            index = source.backend.read(keys.pack_index(pack_id))
        except FileNotFoundError:
            raise PackGone(source, pack_id) from None
        if sha256_bytes(body) != pack_id:
            raise _corrupt(source.blobs, f"pack {keys.pack(pack_id)}")
        parse_index(index, keys.pack_index(pack_id))
        dest.write(keys.pack(pack_id), body, sha256=pack_id)
        dest.write(keys.pack_index(pack_id), index)
        return len(body)

    sent = Sent(blobs=len(todo), present=len(pack_ids) - len(todo))
    if todo:
        with ThreadPoolExecutor(max_workers=min(4, len(todo))) as pool:
            sent.bytes = sum(pool.map(one, todo))
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
