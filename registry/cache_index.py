"""What the cache knows about its entries: the size and mtime each was verified with, and when
it was last used. One SQLite table beside the hash database, on a connection of its own.

Records are written in batches (``flush``): a download of 2,000 files costs one transaction.
A broken database only costs re-fetching, never a wrong byte (entries are re-verified).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from .state_db import StateDb

Recorded = tuple[int, int]
"""(size, mtime_ns) an entry had when it was verified."""


class CacheIndex:
    def __init__(self, db_path: Path) -> None:
        self.db = StateDb(db_path, (
            "CREATE TABLE IF NOT EXISTS cache_entries (path TEXT PRIMARY KEY, sha256 TEXT,"
            " size INTEGER, mtime_ns INTEGER, last_used REAL)",
        ))
        self._pending: dict[str, tuple[str, str, int, int, float]] = {}
        self._pending_lock = threading.Lock()

    def _db(self) -> sqlite3.Connection | None:
        return self.db.connection()

    def record(self, path: Path, sha256: str, st: os.stat_result | None = None) -> None:
        """Remember a just-verified entry as it is now on disk (``st``: its stat, when the caller
        has it); written with the next ``flush``."""
        st = st if st is not None else os.stat(path)
        with self._pending_lock:
            self._pending[str(path)] = (str(path), sha256, st.st_size, st.st_mtime_ns, time.time())

    def flush(self, used: Iterable[Path | str] = ()) -> None:
        """Write pending records and mark ``used`` entries as just used (for LRU eviction)."""
        with self._pending_lock:
            pending, self._pending = list(self._pending.values()), {}
        db = self._db()
        if db is None:
            return
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO cache_entries VALUES (?,?,?,?,?)", pending)
                names, now = [str(p) for p in used], time.time()
                for start in range(0, len(names), 500):  # one statement per 500: 50,000 cost ~0.1 s
                    chunk = names[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"UPDATE cache_entries SET last_used=? WHERE path IN ({marks})", [now, *chunk])
        except sqlite3.Error:
            pass

    def recorded(self, paths: list[str]) -> dict[str, Recorded]:
        """What each entry was verified with: written rows, then those not yet written."""
        found: dict[str, Recorded] = {}
        db = self._db()
        if db is not None:
            try:
                for start in range(0, len(paths), 500):
                    chunk = paths[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT path, size, mtime_ns FROM cache_entries WHERE path IN ({marks})"
                    found.update((row[0], (row[1], row[2])) for row in db.execute(query, chunk))
            except sqlite3.Error:
                pass
        wanted = set(paths)
        with self._pending_lock:
            found.update((path, (row[2], row[3])) for path, row in self._pending.items() if path in wanted)
        return found

    def entries(self, under: Path) -> list[tuple[Path, int, float]]:
        """(path, size, last used) of every recorded entry under ``under`` still on disk."""
        db = self._db()
        if db is None:
            return []
        query = "SELECT path, size, last_used FROM cache_entries WHERE path LIKE ?"
        rows = db.execute(query, (str(under) + "%",)).fetchall()
        return [(Path(p), s, t) for p, s, t in rows if os.path.exists(p)]

    def forget(self, path: Path) -> None:
        db = self._db()
        if db is not None:
            with db:
                db.execute("DELETE FROM cache_entries WHERE path=?", (str(path),))


def as_recorded(st: os.stat_result, size: int | None, recorded: Recorded | None) -> bool:
    """The entry still has the expected size and the size and mtime it was verified with."""
    return (size is None or st.st_size == size) and recorded == (st.st_size, st.st_mtime_ns)
