"""The local, content-addressed cache of verified blobs that downloads are placed from.

Two kinds, chosen once when a store is opened (``open_cache``): a ``DownloadCache`` keeps
fetched blobs at ``<cache>/blobs/sha256/<2 hex>/<rest>``, read-only; with a local-directory
store, the store's own blobs serve as the cache (``StoreCache``), verified once on first use.
Each entry's size and mtime are recorded when it is verified (``CacheIndex``) and checked
on every use; a mismatch means the file was altered on disk, so it is not used. A per-blob
file lock only avoids fetching twice: correctness comes from temp files and atomic renames.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from . import keys
from .assembly import write_all_at
from .blobs import BlobStore, Progress
from .cache_index import CacheIndex, as_recorded
from .errors import IntegrityError
from .hashing import sha256_file
from .placement import Placement, copy_file
from .settings import LinkMode
from .tempnames import temp_beside

LOCK_MIN = 8 * 1024 * 1024
"""From this size a fetch takes a file lock, so that two processes never fetch it twice."""
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
Chunks = tuple[tuple[str, int], ...]


class Cache:
    """Verified local copies of blobs: what both kinds share."""

    IS_STORE = False
    """Whether the entries are the store's own blobs (nothing to fetch, nothing to evict)."""

    def __init__(self, root: Path, blobs: BlobStore, link_mode: LinkMode = "auto",
                 max_size: int | None = None) -> None:
        self.root = Path(root)
        self.blobs = blobs
        self.max_size = max_size
        self.index = CacheIndex(self.root / "state.sqlite")
        self.placement = Placement(link_mode)
        self._ready_dirs: set[Path] = set()

    @property
    def is_store(self) -> bool:
        return self.IS_STORE

    def entry_path(self, sha256: str) -> Path:
        return self.root / keys.blob(sha256)

    @property
    def _entries_dir(self) -> str:
        """Where entries live, as a string: a download of many small files makes no ``Path`` per file."""
        return str(self.entry_path("0" * 64).parent.parent)

    # -- validity --------------------------------------------------------------------------
    def is_valid(self, path: Path, size: int | None) -> bool:
        """Cheap check on every use: the file is there, with the size and mtime it was verified with."""
        st = _stat(path)
        return st is not None and as_recorded(st, size, self.index.recorded([str(path)]).get(str(path)))

    def entry_paths(self, shas: Iterable[str]) -> dict[str, str]:
        """``sha256 -> entry path`` as strings, checking nothing (no ``Path`` per file)."""
        entries_dir = self._entries_dir
        return {sha: f"{entries_dir}/{sha[:2]}/{sha[2:]}" for sha in shas}

    def valid_entries(self, sizes: dict[str, int | None]) -> dict[str, str | None]:
        """``sha256 -> entry path`` of each blob whose entry passes ``is_valid`` (else None), in one query."""
        paths = self.entry_paths(sizes)
        recorded = self.index.recorded(list(paths.values()))
        valid: dict[str, str | None] = {}
        for sha, path in paths.items():
            st = _stat(path)
            ok = st is not None and as_recorded(st, sizes[sha], recorded.get(path))
            valid[sha] = path if ok else None
        return valid

    def touch(self, paths: list[Path] | list[str]) -> None:
        """Mark entries as just used (for LRU eviction) and write pending records."""
        self.index.flush(paths)

    # -- entries ---------------------------------------------------------------------------
    def ensure(self, sha256: str, size: int | None, what: str = "", copy_to: Path | None = None,
               progress: Progress | None = None, chunks: Chunks | None = None) -> Path:
        """A verified local copy of a blob, obtained only when missing or altered.

        ``copy_to`` (a new file) gets the same bytes: written as they stream in when the
        blob is fetched, copied from the entry otherwise. ``progress`` gets the blob's byte
        counts: as they arrive, or all at once when it was already here.
        """
        path = self.entry_path(sha256)
        fetched = not self.is_valid(path, size) \
            and self._obtain(sha256, path, size, what, copy_to, progress, chunks)
        if not fetched:
            if copy_to is not None:
                try:
                    copy_file(path, copy_to)
                except FileNotFoundError:  # evicted by another process since it was checked
                    return self.ensure(sha256, size, what, copy_to, progress, chunks)
            if progress:
                progress(size if size is not None else os.path.getsize(path))
        return path

    def _obtain(self, sha256: str, path: Path, size: int | None, what: str, copy_to: Path | None,
                progress: Progress | None, chunks: Chunks | None = None) -> bool:
        """Make the entry valid; True when its bytes also went to ``copy_to`` and ``progress``."""
        raise NotImplementedError

    def keep(self, sha256: str, data: bytes) -> None:
        """Add bytes this process holds and trusts (a file list it just uploaded), so reading them
        back costs no request. Small things only: uploads are not copied into the cache."""

    def temp_for(self, sha256: str) -> Path:
        """A new temp file's name beside the entry (same filesystem: ``adopt`` renames it)."""
        path = self.entry_path(sha256)
        self._make_parent(path)
        return temp_beside(path)

    def _make_parent(self, path: Path) -> None:
        """Entries sit in 256 directories, which the registry never removes: each is made (or
        found) once per process, not once per file (a cold pull of 50,000 small files spent
        9 % of its time asking)."""
        parent = path.parent
        if parent not in self._ready_dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._ready_dirs.add(parent)

    def adopt(self, sha256: str, verified: Path | bytes) -> Path:
        """Make a file (renamed into place) or bytes this process has just verified against
        ``sha256`` an entry; recorded with the next ``touch``. Files read out of packs land here."""
        raise NotImplementedError(f"{type(self).__name__} keeps no fetched files")

    def verify_entry(self, sha256: str) -> bool:
        """Full re-hash of an entry (``registry verify``)."""
        path = self.entry_path(sha256)
        return path.exists() and sha256_file(path) == sha256

    # -- placing and size ------------------------------------------------------------------
    def place(self, source: Path | str, dest: Path | str, new: bool = False) -> os.stat_result | None:
        """Put a cached file at ``dest`` atomically: reflink, else copy (hardlink on request);
        the new file's stat when placing took it (``Placement.place``, as is ``new``)."""
        return self.placement.place(source, dest, new)

    @property
    def links(self) -> bool:
        """Whether placing has been making hard links to entries (which share their inode)."""
        return self.placement.links

    @property
    def would_link(self) -> bool:
        """Whether placing is to make hard links to entries (asked for, not found impossible)."""
        return self.placement.would_link

    def copies_into(self, directory: Path) -> bool:
        """Whether placing a file in ``directory`` copies its bytes (no reflink, no hardlink)."""
        return self.placement.copies_into(directory, self.root)

    def entries(self) -> list[tuple[Path, int, float]]:
        """(path, size, last used) of every entry this cache may evict."""
        return []

    def clean(self, max_size: int | None = None, keep: frozenset[Path] = frozenset()) -> tuple[int, int]:
        """Evict least-recently-used entries (never those in ``keep``) until the cache fits;
        returns (files, bytes) freed."""
        return 0, 0


class DownloadCache(Cache):
    """Blobs fetched from a remote store into the cache directory."""

    def _obtain(self, sha256: str, path: Path, size: int | None, what: str, copy_to: Path | None,
                progress: Progress | None, chunks: Chunks | None = None) -> bool:
        if size is not None and size < LOCK_MIN:  # fetching twice costs less than a lock file
            return self._fetch(sha256, path, size, what, copy_to, progress, chunks)
        from filelock import FileLock  # imported on first use: it costs every CLI call ~15 ms

        with FileLock(str(self._lock_path(sha256))):
            if self.is_valid(path, size):  # another process fetched it meanwhile
                return False
            return self._fetch(sha256, path, size, what, copy_to, progress, chunks)

    def _fetch(self, sha256: str, path: Path, size: int | None, what: str, copy_to: Path | None,
               progress: Progress | None, chunks: Chunks | None = None) -> bool:
        self._make_parent(path)
        self.blobs.fetch(sha256, path, size=size, what=what, copy_to=copy_to, progress=progress,
                         chunks=chunks)
        os.chmod(path, READ_ONLY)
        self.index.record(path, sha256)
        return True

    def keep(self, sha256: str, data: bytes) -> None:
        if not self.is_valid(self.entry_path(sha256), len(data)):
            self.adopt(sha256, data)
            self.index.flush()

    def adopt(self, sha256: str, verified: Path | bytes) -> Path:
        path = self.entry_path(sha256)
        self._make_parent(path)
        temp = verified if isinstance(verified, Path) else temp_beside(path)
        try:
            if isinstance(verified, Path):
                os.chmod(temp, READ_ONLY)
                st = os.stat(temp)
            else:  # created read-only: one syscall fewer per small file (a pack holds thousands)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, READ_ONLY)
                try:
                    write_all_at(fd, memoryview(verified), 0)
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.index.record(path, sha256, st)
        return path

    def verify_entry(self, sha256: str) -> bool:
        """Full re-hash; a bad entry is removed so that the next use fetches it again."""
        if super().verify_entry(sha256):
            return True
        self.entry_path(sha256).unlink(missing_ok=True)
        return False

    def _lock_path(self, sha256: str) -> Path:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        return locks / f"{sha256}.lock"

    def entries(self) -> list[tuple[Path, int, float]]:
        return self.index.entries(self.root / "blobs")

    def clean(self, max_size: int | None = None, keep: frozenset[Path] = frozenset()) -> tuple[int, int]:
        """Evict least-recently-used entries until the cache fits ``max_size`` (default: the
        configured limit; none means no eviction). Entries in ``keep`` (about to be read) and
        large entries another process is fetching (it holds their lock) are skipped; a download
        whose entry is evicted between fetch and placement fetches it again."""
        limit = self.max_size if max_size is None else max_size
        if limit is None:
            return 0, 0
        from filelock import FileLock, Timeout  # imported on first use: it costs every CLI call ~15 ms

        entries = sorted(self.entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        freed_files = freed_bytes = 0
        for path, size, _ in entries:
            if total <= limit and limit > 0:  # a limit of 0 empties the cache, empty files included
                break
            if path in keep:
                continue
            try:
                with FileLock(str(self._lock_path(path.parent.name + path.name)), timeout=0):
                    path.unlink(missing_ok=True)
            except Timeout:
                continue
            self.index.forget(path)
            total -= size
            freed_files += 1
            freed_bytes += size
        return freed_files, freed_bytes


class StoreCache(Cache):
    """A local-directory store is its own cache: its blobs are verified once, then placed from."""

    IS_STORE = True

    def entry_path(self, sha256: str) -> Path:
        path = self.blobs.backend.local_path(keys.blob(sha256))
        assert path is not None  # a StoreCache is only opened over a local store
        return path

    def copies_into(self, directory: Path) -> bool:
        return False  # the fetch of a store blob is a verification: nothing streams to copy along

    def _obtain(self, sha256: str, path: Path, size: int | None, what: str, copy_to: Path | None,
                progress: Progress | None, chunks: Chunks | None = None) -> bool:
        if not path.exists():
            # format 2 chunks copied in from a remote store: written out whole (and verified) on first use
            path.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.fetch(sha256, path, size=size, what=what, chunks=chunks)
        elif sha256_file(path) != sha256:
            raise IntegrityError(f"blob {keys.blob(sha256)} (file {what!r}) does not match its sha256: "
                                 "the store copy is corrupt; re-log it")
        os.chmod(path, READ_ONLY)  # hardlinked into download roots: an edit there must not reach the store
        self.index.record(path, sha256)
        return False


def open_cache(root: Path, blobs: BlobStore, link_mode: LinkMode = "auto",
               max_size: int | None = None) -> Cache:
    """The cache for a store: its own blobs when it is a local directory, else a download cache."""
    kind = StoreCache if blobs.backend.local_path("blobs") is not None else DownloadCache
    return kind(root, blobs, link_mode, max_size)


def _stat(path: Path | str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
