"""The local, content-addressed download cache, and placing its files in a download root.

Entries live at ``<cache>/blobs/sha256/<2 hex>/<rest>``, read-only. Files reach a download
root by reflink where the filesystem can, else by copy (hardlinks on request). Each entry's size and
mtime are recorded when it is verified, and checked on every use; a mismatch means the
file was altered on disk, so it is fetched again. With a local-directory store the store's
own blobs serve as the cache. A per-blob file lock only avoids fetching twice: correctness
comes from temp files and atomic renames.
"""
from __future__ import annotations

import errno
import fcntl
import functools
import os
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from pathlib import Path

from . import keys
from .blobs import BlobStore
from .hashing import HashState, sha256_file
from .tempnames import temp_beside

FICLONE = 0x40049409
LOCK_MIN = 8 * 1024 * 1024
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


class Cache:
    def __init__(self, root: Path, blobs: BlobStore, hashes: HashState, link_mode: str = "auto", max_size: int | None = None) -> None:
        self.root = root
        self.blobs = blobs
        self.hashes = hashes
        self.link_mode = link_mode
        self.max_size = max_size
        self._reflink_ok: bool | None = None
        self._hardlink_ok: bool | None = None
        self._db_ready = False
        self._pending: dict[str, tuple] = {}
        self._pending_lock = threading.Lock()

    # -- bookkeeping -----------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection | None:
        db = self.hashes._db()
        if db is not None and not self._db_ready:
            db.execute("CREATE TABLE IF NOT EXISTS cache_entries (path TEXT PRIMARY KEY, sha256 TEXT, size INTEGER, mtime_ns INTEGER, last_used REAL)")
            self._db_ready = True
        return db

    def _record(self, path: Path, sha256: str) -> None:
        """Remember a verified entry; written with the next ``touch`` (one transaction per download)."""
        st = os.stat(path)
        with self._pending_lock:
            self._pending[str(path)] = (str(path), sha256, st.st_size, st.st_mtime_ns, time.time())

    def touch(self, paths: list[Path]) -> None:
        """Mark entries as just used (for LRU eviction) and write pending records."""
        db = self._db()
        with self._pending_lock:
            pending, self._pending = list(self._pending.values()), {}
        if db is None:
            return
        with db:
            db.executemany("INSERT OR REPLACE INTO cache_entries VALUES (?,?,?,?,?)", pending)
            db.executemany("UPDATE cache_entries SET last_used=? WHERE path=?", [(time.time(), str(p)) for p in paths])

    # -- entries ---------------------------------------------------------------------------
    def entry_path(self, sha256: str) -> Path:
        local = self.blobs.backend.local_path(keys.blob(sha256))
        return local if local is not None else self.root / keys.blob(sha256)

    @functools.cached_property
    def is_store(self) -> bool:
        return self.blobs.backend.local_path("blobs") is not None

    def is_valid(self, path: Path, size: int | None) -> bool:
        """Cheap check on every use: the file is there, with the size and mtime it was verified with."""
        st = _stat(path)
        return st is not None and _as_recorded(st, size, self._recorded_many([str(path)]).get(str(path)))

    def valid_entries(self, sizes: dict[str, int]) -> dict[str, Path | None]:
        """``sha256 -> entry path`` for each blob whose entry passes ``is_valid`` (else None), in one query."""
        paths = {sha: self.entry_path(sha) for sha in sizes}
        recorded = self._recorded_many([str(p) for p in paths.values()])
        valid: dict[str, Path | None] = {}
        for sha, path in paths.items():
            st = _stat(path)
            valid[sha] = path if st is not None and _as_recorded(st, sizes[sha], recorded.get(str(path))) else None
        return valid

    def _recorded_many(self, paths: list[str]) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) each entry was verified with: written rows, then those not yet written."""
        found: dict[str, tuple[int, int]] = {}
        db = self._db()
        if db is not None:
            for start in range(0, len(paths), 500):
                chunk = paths[start : start + 500]
                query = f"SELECT path, size, mtime_ns FROM cache_entries WHERE path IN ({','.join('?' * len(chunk))})"
                found.update((row[0], (row[1], row[2])) for row in db.execute(query, chunk))
        wanted = set(paths)
        with self._pending_lock:
            found.update((path, (row[2], row[3])) for path, row in self._pending.items() if path in wanted)
        return found

    def ensure(self, sha256: str, size: int | None, what: str = "", copy_to: Path | None = None, progress=None) -> Path:
        """A verified local copy of a blob, fetched only when missing or altered.

        ``copy_to`` (a new file) gets the same bytes: written as they stream in when the
        blob is fetched, copied from the entry otherwise. ``progress`` gets the blob's byte
        counts: as they arrive, or all at once when it was already here.
        """
        path = self.entry_path(sha256)
        fetched = False
        if self.is_valid(path, size):
            pass
        elif self.is_store:
            self._adopt_store_blob(path, sha256, size, what)
        elif size is not None and size < LOCK_MIN:  # fetching twice costs less than a lock file
            fetched = self._fetch(sha256, path, size, what, copy_to, progress)
        else:
            from filelock import FileLock  # imported on first use: it costs every CLI call ~15 ms

            with FileLock(str(self._lock_path(sha256))):
                if not self.is_valid(path, size):  # else another process fetched it meanwhile
                    fetched = self._fetch(sha256, path, size, what, copy_to, progress)
        if not fetched:
            if copy_to is not None:
                _copy(path, copy_to)
            if progress:
                progress(size if size is not None else os.path.getsize(path))
        return path

    def _fetch(self, sha256: str, path: Path, size: int | None, what: str, copy_to: Path | None, progress) -> bool:
        if not path.parent.is_dir():  # a stat: cheaper than mkdir's exception when it exists
            path.parent.mkdir(parents=True, exist_ok=True)
        self.blobs.fetch(sha256, path, size=size, what=what, copy_to=copy_to, progress=progress)
        os.chmod(path, READ_ONLY)
        self._record(path, sha256)
        return True

    def _adopt_store_blob(self, path: Path, sha256: str, size: int | None, what: str) -> Path:
        from .errors import IntegrityError, NotFoundError

        if not path.exists():
            raise NotFoundError(f"blob {keys.blob(sha256)} (file {what!r}) is missing from the store: re-log the artifact that holds it")
        if sha256_file(path) != sha256:
            raise IntegrityError(f"blob {keys.blob(sha256)} (file {what!r}) does not match its sha256: the store copy is corrupt; re-log it")
        os.chmod(path, READ_ONLY)  # hardlinked into download roots: an edit there must not reach the store
        self._record(path, sha256)
        return path

    def verify_entry(self, sha256: str) -> bool:
        """Full re-hash of a cache entry; a bad entry is removed so the next use fetches it again."""
        path = self.entry_path(sha256)
        if not path.exists():
            return False
        if sha256_file(path) == sha256:
            return True
        if not self.is_store:
            path.unlink(missing_ok=True)
        return False

    def _lock_path(self, sha256: str) -> Path:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        return locks / f"{sha256}.lock"

    # -- placing files ---------------------------------------------------------------------
    def place(self, source: Path, dest: Path) -> None:
        """Put a cached file at ``dest`` atomically: reflink, else hardlink, else copy."""
        if self._hardlink_ok and self.link_mode == "hardlink":
            try:
                os.link(source, dest)  # a new name appears whole: no temp file needed
                return
            except FileExistsError:
                pass
        temp = temp_beside(dest)
        try:
            self._link(source, temp)
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _link(self, source: Path, temp: Path) -> None:
        """Reflink (a copy-on-write clone: instant, and an edit cannot reach the cache), else copy.

        Hardlinks are opt-in (``REGISTRY_LINK_MODE=hardlink``): a download would share its inode
        with the cache, and read-only bits stop neither root nor a ``chmod`` before an edit.
        """
        mode = self.link_mode
        if mode in ("auto", "reflink") and self._reflink_ok is not False:
            if self._reflink(source, temp):
                return
            if mode == "reflink":
                raise OSError(f"this filesystem cannot reflink {source} to {temp}: set REGISTRY_LINK_MODE=auto or copy")
        if mode == "hardlink" and self._hardlink_ok is not False:
            try:
                os.link(source, temp)
                self._hardlink_ok = True
                return
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                self._hardlink_ok = False  # another filesystem: fall back to copying
        _copy(source, temp)

    def copies_into(self, directory: Path) -> bool:
        """Whether placing a file in ``directory`` copies its bytes (no reflink, no hardlink)."""
        if self.is_store:
            return False
        if self.link_mode == "copy":
            return True
        if self.link_mode == "hardlink":
            return self._hardlink_ok is False
        if self._reflink_ok is None:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".{uuid.uuid4().hex}.probe"
            probe.write_bytes(b"r")
            clone = directory / f".{uuid.uuid4().hex}.part"
            try:
                self._reflink(probe, clone)
            finally:
                probe.unlink(missing_ok=True)
                clone.unlink(missing_ok=True)
        return self.link_mode == "auto" and not self._reflink_ok

    def _reflink(self, source: Path, temp: Path) -> bool:
        try:
            with open(source, "rb") as src, open(temp, "wb") as dst:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        except OSError:
            temp.unlink(missing_ok=True)
            self._reflink_ok = False
            return False
        self._reflink_ok = True
        return True

    # -- size limit ------------------------------------------------------------------------
    def entries(self) -> list[tuple[Path, int, float]]:
        """(path, size, last used) of every entry in this cache directory."""
        db = self._db()
        prefix = str(self.root / "blobs")
        rows = db.execute("SELECT path, size, last_used FROM cache_entries WHERE path LIKE ?", (prefix + "%",)).fetchall() if db else []
        return [(Path(p), s, t) for p, s, t in rows if os.path.exists(p)]

    def clean(self, max_size: int | None = None) -> tuple[int, int]:
        """Evict least-recently-used entries until the cache fits ``max_size``; returns (files, bytes) freed.

        An entry whose lock is held (another process is placing it) is skipped.
        """
        limit = self.max_size if max_size is None else max_size
        if limit is None or self.is_store:
            return 0, 0
        from filelock import FileLock, Timeout  # imported on first use: it costs every CLI call ~15 ms

        entries = sorted(self.entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        freed_files = freed_bytes = 0
        db = self._db()
        for path, size, _ in entries:
            if total <= limit and limit > 0:  # a limit of 0 empties the cache, empty files included
                break
            lock = FileLock(str(self._lock_path(path.parent.name + path.name)), timeout=0)
            try:
                with lock:
                    path.unlink(missing_ok=True)
            except Timeout:
                continue
            if db is not None:
                with db:
                    db.execute("DELETE FROM cache_entries WHERE path=?", (str(path),))
            total -= size
            freed_files += 1
            freed_bytes += size
        return freed_files, freed_bytes


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _as_recorded(st: os.stat_result, size: int | None, recorded: tuple[int, int] | None) -> bool:
    """The entry still has the expected size and the size and mtime it was verified with."""
    return (size is None or st.st_size == size) and recorded == (st.st_size, st.st_mtime_ns)


def _copy(source: Path, dest: Path) -> None:
    """Copy ``source`` to a new file ``dest`` inside the kernel (``copy_file_range``).

    Half the CPU of ``shutil.copyfile`` for thousands of small files, which a download places.
    """
    src = os.open(source, os.O_RDONLY)
    try:
        dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            left = os.fstat(src).st_size
            while left > 0:
                try:
                    copied = os.copy_file_range(src, dst, left)
                except OSError as e:  # e.g. across filesystems on old kernels: copy through user space
                    if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    with open(src, "rb", closefd=False) as reader, open(dst, "wb", closefd=False) as writer:
                        shutil.copyfileobj(reader, writer, 1 << 20)
                    return
                if copied == 0:
                    break
                left -= copied
        finally:
            os.close(dst)
    finally:
        os.close(src)
