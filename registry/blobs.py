"""File bodies, stored once under their sha256 however many versions hold them."""
from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

from backends import Backend, ContentMismatch

from . import keys
from .errors import IntegrityError, NotFoundError
from .hashing import sha256_bytes, sha256_file, write_all
from .pack_locations import PackIndexes
from .tempnames import temp_beside

LIST_THRESHOLD = 256
"""From this many blobs to check, try listing their prefixes instead of one HEAD each."""
LIST_LIMIT = 2000
"""A prefix holding more blobs than this means the store is big: HEADs are cheaper then."""

Progress = Callable[[int], None]
"""Called with a byte count as transfers progress."""


class BlobStore:
    """Content-addressed bodies: ``blobs/sha256/<2 hex>/<rest>``, or (format 2) chunks in packs
    found through ``packs``; every read is verified."""

    def __init__(self, backend: Backend, workers: int = 16, packs: PackIndexes | None = None) -> None:
        self.backend = backend
        self.workers = workers
        self.packs = packs

    def exists(self, sha256: str) -> bool:
        return self.backend.exists(keys.blob(sha256))

    def missing(self, shas: Iterable[str]) -> set[str]:
        """Which of ``shas`` the store lacks: one HEAD each in parallel, or, for many blobs in a
        store that is not huge, one listing per ``<2 hex>`` prefix (at most 256 requests)."""
        absent = self.missing_loose(shas)
        if absent and self.packs is not None:
            absent -= self.packs.locate(absent).keys()
        return absent

    def missing_loose(self, shas: Iterable[str]) -> set[str]:
        """Which of ``shas`` the store lacks as ``blobs/...`` objects (packs not looked at)."""
        todo = sorted(set(shas))
        if not todo:
            return set()
        if len(todo) >= LIST_THRESHOLD:
            present = self._present_by_listing(todo)
            if present is not None:
                return set(todo) - present
        with ThreadPoolExecutor(max_workers=min(self.workers, len(todo))) as pool:
            found = list(pool.map(self.exists, todo))
        return {sha for sha, here in zip(todo, found) if not here}

    def _present_by_listing(self, todo: list[str]) -> set[str] | None:
        """Blobs present under the prefixes of ``todo``; None when a prefix is too big to list cheaply."""
        whole_limit = min(4 * len(todo), 20000)  # a small store: one paginated listing of every blob
        every = [info.key for info in islice(self.backend.list(keys.blob_prefix()), whole_limit + 1)]
        if len(every) <= whole_limit:
            return {keys.sha_of_blob_key(k) for k in every}
        prefixes = sorted({sha[:2] for sha in todo})

        def list_prefix(two: str) -> list[str] | None:
            listing = self.backend.list(f"{keys.blob_prefix()}{two}/")
            keys_here = [info.key for info in islice(listing, LIST_LIMIT + 1)]
            return None if len(keys_here) > LIST_LIMIT else [keys.sha_of_blob_key(k) for k in keys_here]

        with ThreadPoolExecutor(max_workers=min(self.workers, len(prefixes))) as pool:
            listed = list(pool.map(list_prefix, prefixes))
        if any(found is None for found in listed):
            return None
        return {sha for found in listed for sha in found}  # type: ignore[union-attr]

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` unless present. Nothing keeps ``gc`` away from it: writers go through
        ``protection.Protection``, which names blobs in an in-flight marker first."""
        sha = sha256_bytes(data)
        if not self.exists(sha):
            self.upload_bytes(sha, data)
        return sha

    def upload_bytes(self, sha256: str, data: bytes) -> None:
        """Store bytes held in memory under their (caller-computed) sha256; the server checks the body
        arrived as sent (its checksum)."""
        self.backend.write(keys.blob(sha256), data, sha256=sha256)

    def upload(self, files: dict[str, Path], progress: Progress | None = None) -> None:
        """Upload ``sha256 -> local path`` in parallel; the bytes sent are checked against each sha256.

        A file that no longer holds the bytes it was hashed from is refused with ``IntegrityError``
        naming it, and nothing is stored under its sha256.
        """

        def one(item: tuple[str, Path]) -> None:
            sha, path = item
            try:
                self.backend.write_file(keys.blob(sha), path, sha256=sha, progress=progress)
            except ContentMismatch:
                raise IntegrityError(
                    f"{path} changed after it was added "
                    f"(its bytes no longer match the sha256 recorded then, {sha[:12]}...): "
                    "nothing was logged; add it again once nothing is writing to it"
                ) from None

        if files:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(files))) as pool:
                list(pool.map(one, files.items()))

    def read(self, sha256: str, what: str = "") -> bytes:
        """A whole (small) blob, verified against its hash."""
        try:
            data = self.backend.read(keys.blob(sha256))
        except FileNotFoundError:
            data = self._read_packed(sha256, what)
        if sha256_bytes(data) != sha256:
            raise IntegrityError(
                f"blob {keys.blob(sha256)}{_for(what)} does not match its sha256: "
                "the store copy is corrupt; re-log it"
            )
        return data

    def _read_packed(self, chunk_id: str, what: str) -> bytes:
        """A chunk's bytes out of its pack (unverified: the caller checks them). A pack found
        gone (gc repacked it since its index was loaded) makes the indexes refresh, once."""
        missing = NotFoundError(f"blob {keys.blob(chunk_id)}{_for(what)} is missing from the store: "
                                "re-log the artifact that holds it")
        if self.packs is None:
            raise missing
        for _ in range(2):
            where = self.packs.locate([chunk_id]).get(chunk_id)
            if where is None:
                break
            key = keys.pack(where.pack)
            try:
                data = self.backend.read_range(key, where.offset, where.offset + where.length)
            except FileNotFoundError:
                self.packs.refresh([where.pack])
                continue
            if len(data) != where.length:
                raise IntegrityError(f"pack {key} is shorter than its index says: the store copy "
                                     "is corrupt; re-log the artifact that holds it")
            return data
        raise missing

    def fetch(
        self, sha256: str, dest: Path, size: int | None = None, what: str = "", copy_to: Path | None = None,
        progress: Progress | None = None, chunks: tuple[tuple[str, int], ...] | None = None,
    ) -> None:
        """Download a blob to ``dest`` through a temp file; bad bytes never reach ``dest``.

        With ``copy_to`` (a new file) the same bytes are written there too while they stream
        in, which saves copying the entry afterwards; the caller must discard that file
        unless this returns. ``progress`` gets byte counts as they arrive. A file stored as
        ``chunks`` (format 2) is put together from them, each checked, then the whole.
        """
        temp = temp_beside(dest)
        try:
            hasher = hashlib.sha256()
            try:
                with _Tee(hasher, copy_to, progress) as sink:
                    if chunks is not None:
                        streamed = self._assemble(chunks, temp, sink, what)
                    else:
                        try:
                            streamed = self.backend.read_to_file(keys.blob(sha256), temp, size=size,
                                                                 hasher=sink)
                        except FileNotFoundError:
                            streamed = self._assemble(((sha256, size or 0),), temp, sink, what)
                    if not streamed:
                        if copy_to is not None:
                            copy_to.unlink()
                            shutil.copyfile(temp, copy_to)
                        if progress:
                            progress(os.path.getsize(temp))
            except FileNotFoundError:
                raise NotFoundError(
                    f"blob {keys.blob(sha256)}{_for(what)} is missing from the store: "
                    "re-log the artifact that holds it"
                ) from None
            if (hasher.hexdigest() if streamed else sha256_file(temp)) != sha256:
                raise IntegrityError(
                    f"blob {keys.blob(sha256)}{_for(what)} does not match its sha256: "
                    "the store copy is corrupt; re-log it"
                )
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _assemble(self, chunks: Iterable[tuple[str, int]], temp: Path, sink: _Tee, what: str) -> bool:
        """Write chunks in order into ``temp``, each checked against its id, feeding ``sink``."""
        with open(temp, "wb", buffering=0) as out:
            for chunk_id, _ in chunks:
                data = self._read_packed(chunk_id, what)
                if sha256_bytes(data) != chunk_id:
                    raise IntegrityError(f"chunk {chunk_id[:12]}...{_for(what)} does not match its sha256: "
                                         "the store copy is corrupt; re-log it")
                write_all(out, data)
                sink.update(data)
        return True


class _Tee:
    """Feeds streamed bytes to a hasher and, optionally, to a second new file and a progress callback."""

    def __init__(self, hasher, path: Path | None, progress: Progress | None = None) -> None:
        self.hasher, self.progress = hasher, progress
        # unbuffered: the chunks are large
        self.file = open(path, "xb", buffering=0) if path is not None else None  # noqa: SIM115 - closed by __exit__

    def update(self, data: bytes) -> None:
        self.hasher.update(data)
        if self.file is not None:
            write_all(self.file, data)
        if self.progress is not None:
            self.progress(len(data))

    def __enter__(self) -> _Tee:
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


def _for(what: str) -> str:
    return f" (file {what!r})" if what else ""
