"""This machine's state database (``state.sqlite`` in the cache directory), shared by the hash
database and the cache index: one SQLite connection per thread, in WAL mode.

A database that cannot be opened gives None: the callers then only lose what it would have
saved them (re-hashing, re-fetching), never correctness.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path


class StateDb:
    def __init__(self, path: Path, schema: tuple[str, ...],
                 functions: Mapping[str, Callable[[str], int]] | None = None) -> None:
        self.path = Path(path)
        self.schema = schema
        self.functions = functions or {}
        """One-argument Python functions the SQL may call (registered on each connection)."""
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection | None:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")  # a lost row only costs re-hashing or re-fetching
                for name, function in self.functions.items():
                    db.create_function(name, 1, function, deterministic=True)
                for statement in self.schema:
                    db.execute(statement)
            except sqlite3.Error:
                return None
            self._local.db = db
        return db

    def fetch_one(self, query: str, params: tuple = ()) -> tuple | None:
        """The first row ``query`` gives, or None (none, or no usable database)."""
        db = self.connection()
        if db is None:
            return None
        try:
            row = db.execute(query, params).fetchone()
        except sqlite3.Error:
            return None
        return tuple(row) if row is not None else None

    def write(self, statement: str, params: tuple = ()) -> None:
        """Run one statement in its own transaction; a failure only loses what it would have saved."""
        db = self.connection()
        if db is None:
            return
        try:
            with db:
                db.execute(statement, params)
        except sqlite3.Error:
            pass


class RememberedValues:
    """One table of the state database: text key -> text value, for work this machine can skip
    when it has done it before. A lost or unreadable row only costs doing the work again."""

    def __init__(self, path: Path, table: str) -> None:
        self.table = table
        self.db = StateDb(path, (f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT)",))

    def get(self, key: str) -> str | None:
        row = self.db.fetch_one(f"SELECT value FROM {self.table} WHERE key=?", (key,))
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        self.db.write(f"INSERT OR REPLACE INTO {self.table} VALUES (?,?)", (key, value))
