"""sha256 of files, streamed, computed once per content.

A small SQLite database in the cache directory remembers (path, device, inode, size,
mtime_ns) -> sha256, so re-logging files that did not change hashes nothing. Where new
versions go into packs (format 2), a large file is cut into chunks by the same read that hashes
it, and its chunk list remembered (``ChunkMemory``): logging it then reads only the chunks the
store lacks, so a 1 %-edited checkpoint is read once, not three times.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import chunking
from .chunk_memory import ChunkMemory
from .state_db import StateDb
from .walk_memory import WalkMemory, walk_fingerprint

CHUNK = 1 << 20
HASH_BATCH = 256
"""Files one hashing task reads: a task (and its future) per file would cost ~1 KB each."""
REMEMBER_BATCH = 10_000
"""New hashes written to the database at a time, so the rows waiting stay few."""
SHA_KEY = "substr(sha256, 1, 8)"
"""What ``known_copies`` looks rows up by: an index on the first 8 hex digits is a third of one
on the whole sha256, and its random inserts dirty that many fewer pages (remembering a 50,000-file
download: ~0.4 s instead of ~0.9 s of CPU); the few rows sharing a prefix are told apart after."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_all(raw, data: bytes) -> None:
    """Write all of ``data`` to an unbuffered file (whose ``write`` may write only part)."""
    view = memoryview(data)
    while view:
        view = view[raw.write(view) :]


class HashState:
    """Remembered hashes of files on this machine; any change to the file's stat forgets it."""

    def __init__(self, db_path: Path, cut_large: bool = False) -> None:
        self.db_path = Path(db_path)
        self.cut_large = cut_large
        """Whether a file of ``chunking.SMALL_FILE_MAX`` bytes or more is also cut into chunks."""
        self.chunks = ChunkMemory(self.db_path)
        self.walks = WalkMemory(self.db_path)
        self.db = StateDb(self.db_path, (
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
            " size INTEGER, mtime_ns INTEGER, sha256 TEXT)",
            f"CREATE INDEX IF NOT EXISTS hashes_by_sha256_prefix ON hashes ({SHA_KEY})",
            "DROP INDEX IF EXISTS hashes_by_sha256",  # the whole-sha256 index of older databases
        ))

    def _db(self) -> sqlite3.Connection | None:
        return self.db.connection()

    def lookup(self, path: Path, st: os.stat_result) -> str | None:
        db = self._db()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT sha256 FROM hashes WHERE path=? AND dev=? AND ino=? AND size=? AND mtime_ns=?",
                (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
            ).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def lookup_many(self, items: Sequence[tuple[str | Path, os.stat_result]],
                    under: str | None = None) -> list[str | None]:
        """``lookup`` for many files in a few queries (one per 500 paths), or in one range scan
        when they all lie in the directory ``under`` (a directory walk)."""
        db = self._db()
        if db is None:
            return [None] * len(items)
        names = [str(path) for path, _ in items]
        select = "SELECT path, dev, ino, size, mtime_ns, sha256 FROM hashes WHERE"
        try:
            if under is not None:
                top = under.rstrip("/")  # every path below it sorts between top + "/" and top + "0"
                rows = list(db.execute(f"{select} path > ? AND path < ?", (top + "/", top + "0")))
            else:
                rows = []
                for start in range(0, len(names), 500):
                    chunk = names[start : start + 500]
                    rows.extend(db.execute(f"{select} path IN ({','.join('?' * len(chunk))})", chunk))
            known: dict[str, tuple] = {row[0]: row[1:] for row in rows}
        except sqlite3.Error:
            return [None] * len(items)
        found: list[str | None] = []
        for name, (_, st) in zip(names, items):
            row = known.get(name)
            if row is not None and row[:4] == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
                found.append(row[4])
            else:
                found.append(None)
        return found

    def known_copies(self, shas: Iterable[str]) -> dict[str, Path]:
        """A file on this machine holding each sha256, where one is known and unchanged since hashed.

        Lets a pull after a push (or after another download) copy local bytes instead of
        fetching them; the caller still verifies what it copies.
        """
        db = self._db()
        wanted = sorted(set(shas))
        if db is None or not wanted:
            return {}
        rows: list[tuple] = []
        try:
            for start in range(0, len(wanted), 500):
                chunk = [sha[:8] for sha in wanted[start : start + 500]]
                marks = ",".join("?" * len(chunk))
                select = "SELECT sha256, path, dev, ino, size, mtime_ns FROM hashes"
                rows.extend(db.execute(f"{select} WHERE {SHA_KEY} IN ({marks})", chunk))
        except sqlite3.Error:
            return {}
        found: dict[str, Path] = {}
        asked = set(wanted)
        for sha, path, *recorded in rows:
            if sha in found or sha not in asked:  # another sha256 with the same first digits
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            if [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns] == recorded:
                found[sha] = Path(path)
        return found

    def remember(self, rows: Iterable[tuple[str | Path, os.stat_result, str]]) -> None:
        db = self._db()
        if db is None:
            return
        try:
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO hashes VALUES (?,?,?,?,?,?)",
                    [(str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, sha) for p, st, sha in rows],
                )
        except sqlite3.Error:
            pass

    def hash_files(self, paths: Sequence[str | os.PathLike[str]], workers: int = 4,
                   stats: list[os.stat_result] | None = None,
                   under: str | None = None) -> list[tuple[str, int]]:
        """(sha256, size) of each path, reusing remembered hashes; new ones in parallel.
        ``stats``: the paths' stats when the caller already has them (one ``stat`` fewer each);
        ``under``: an absolute directory holding every path (remembered hashes in one scan)."""
        names = [path if isinstance(path, str) and path.startswith("/") else os.path.abspath(path)
                 for path in paths]  # absolute already (a walk from an absolute root): as given
        stats = stats if stats is not None else [os.stat(name) for name in names]
        walk = (under, walk_fingerprint(names, stats)) if under is not None else None
        if walk is not None:  # a whole directory: one row may say it all
            recalled = self.walks.recall(*walk, len(names))
            if recalled is not None:
                return [(sha, st.st_size) for sha, st in zip(recalled, stats)]
        results: list[tuple[str, int] | None] = [None] * len(names)
        todo = []
        remembered = self.lookup_many(list(zip(names, stats)), under=under)
        for i, (known, st) in enumerate(zip(remembered, stats)):
            if known:
                results[i] = (known, st.st_size)
            else:
                todo.append(i)

        def hash_some(batch: list[int]) -> list[tuple[int, str, os.stat_result]]:
            done = []
            for i in batch:
                sha = self._hash(names[i], stats[i].st_size)
                done.append((i, sha, os.stat(names[i])))
            return done

        fresh: list[tuple[str, os.stat_result, str]] = []
        unsteady = 0  # files that changed while hashed: their hashes are not remembered
        batches = [todo[start : start + HASH_BATCH] for start in range(0, len(todo), HASH_BATCH)]
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            for done in pool.map(hash_some, batches):  # a task per batch: a million files, ~4,000 tasks
                for i, sha, after in done:
                    results[i] = (sha, after.st_size)
                    if after.st_mtime_ns == stats[i].st_mtime_ns and after.st_size == stats[i].st_size:
                        fresh.append((names[i], after, sha))
                    else:
                        unsteady += 1
                if len(fresh) >= REMEMBER_BATCH:
                    self.remember(fresh)
                    fresh = []
        self.remember(fresh)
        if walk is not None and not unsteady:
            self.walks.remember(*walk, [sha for sha, _ in results])  # type: ignore[misc]
        return results  # type: ignore[return-value]

    def _hash(self, path: str, size: int) -> str:
        if not (self.cut_large and size >= chunking.SMALL_FILE_MAX):
            return sha256_file(path)
        cut = chunking.chunk_file(Path(path))  # both digests from the very same bytes
        self.chunks.put(cut.sha256, chunking.CHUNK_PARAMS, cut.chunks)
        return cut.sha256
