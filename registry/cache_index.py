"""What the cache knows about its entries: the size and mtime each was verified with, and when
it was last used. Two SQLite tables beside the hash database, on a connection of their own.

Records are written in batches (``flush``): a download of 2,000 files costs one transaction.
A broken database only costs re-fetching, never a wrong byte (entries are re-verified).

When an entry was last used lives in a narrow table of its own (``cache_used``: an integer key
made from the entry's path, and a time), because every pull marks every entry it uses: updating
a column of the wide ``cache_entries`` rows rewrote most of that table's pages (50,000 entries:
~0.4 s), the narrow table's take ~0.03 s. ``cache_entries.last_used`` keeps the time an entry
was recorded, which older registry versions also update; eviction takes the later of the two.
"""
from __future__ import annotations

import hashlib
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
            "CREATE TABLE IF NOT EXISTS cache_used (entry INTEGER PRIMARY KEY, last_used REAL)",
        ), functions={"used_key": used_key})
        self._pending: dict[str, tuple[str, str, int, int, float]] = {}
        self._pending_lock = threading.Lock()
        self._upgraded = False

    def _db(self) -> sqlite3.Connection | None:
        db = self.db.connection()
        if db is not None and not self._upgraded:
            self._upgraded = True
            _give_old_entries_used_rows(db)
        return db

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
                db.executemany("INSERT OR REPLACE INTO cache_used VALUES (?,?)",
                               [(used_key(row[0]), row[4]) for row in pending])
                keys, now = [used_key(str(p)) for p in used], time.time()
                for start in range(0, len(keys), 500):  # one statement per 500 (none for a path not recorded)
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    db.execute(f"UPDATE cache_used SET last_used=? WHERE entry IN ({marks})", [now, *chunk])
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
        query = ("SELECT path, size, max(e.last_used, coalesce(u.last_used, 0)) FROM cache_entries e"
                 " LEFT JOIN cache_used u ON u.entry = used_key(e.path) WHERE path LIKE ?")
        rows = db.execute(query, (str(under) + "%",)).fetchall()
        return [(Path(p), s, t) for p, s, t in rows if os.path.exists(p)]

    def forget(self, path: Path) -> None:
        db = self._db()
        if db is not None:
            with db:
                db.execute("DELETE FROM cache_entries WHERE path=?", (str(path),))
                db.execute("DELETE FROM cache_used WHERE entry=?", (used_key(str(path)),))


def used_key(path: str) -> int:
    """An entry's row in ``cache_used``: 63 bits of a hash of its path (two paths sharing one
    would only share a last-used time)."""
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "big") >> 1


def _give_old_entries_used_rows(db: sqlite3.Connection) -> None:
    """Entries recorded before ``cache_used`` existed get their row once (a use of an entry with
    no row is not recorded); several processes may do it at once."""
    try:
        if db.execute("SELECT 1 FROM cache_used LIMIT 1").fetchone() is None \
                and db.execute("SELECT 1 FROM cache_entries LIMIT 1").fetchone() is not None:
            with db:
                db.execute("INSERT OR IGNORE INTO cache_used"
                           " SELECT used_key(path), last_used FROM cache_entries")
    except sqlite3.Error:
        pass


def as_recorded(st: os.stat_result, size: int | None, recorded: Recorded | None) -> bool:
    """The entry still has the expected size and the size and mtime it was verified with."""
    return (size is None or st.st_size == size) and recorded == (st.st_size, st.st_mtime_ns)
