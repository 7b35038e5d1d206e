"""The sha256s of a whole directory walk, remembered under a fingerprint of its files' stats.

Re-logging an unchanged directory of 50,000 files would otherwise read 50,000 rows of the
hash database back (a fifth of a second here) to learn what one row can say: every file has
the path, device, inode, size and mtime it had when hashed, so the hashes are the ones
remembered. Any change to any file (or a file added or gone) changes the fingerprint, and
the caller falls back to the per-file rows. The trust is the per-file rows' own: a file whose
stat did not change is taken to hold the same bytes.
"""
from __future__ import annotations

import hashlib
import operator
import os
from array import array
from collections.abc import Sequence
from pathlib import Path

from .state_db import StateDb

_STAT_FIELDS = operator.attrgetter("st_dev", "st_ino", "st_size", "st_mtime_ns")


def walk_fingerprint(names: Sequence[str], stats: Sequence[os.stat_result]) -> bytes:
    """A digest of the files' absolute paths and the stat fields a remembered hash depends on."""
    digest = hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape"))
    numbers = array("q")
    try:
        for st in stats:
            numbers.extend(_STAT_FIELDS(st))
        digest.update(numbers.tobytes())
    except OverflowError:  # an inode number past 2**63 (some network filesystems): as text
        digest.update(repr([_STAT_FIELDS(st) for st in stats]).encode())
    return digest.digest()


class WalkMemory:
    """One row per directory walked: its fingerprint and its files' sha256s, in walk order."""

    def __init__(self, db_path: Path) -> None:
        self.db = StateDb(db_path, (
            "CREATE TABLE IF NOT EXISTS walks (top TEXT PRIMARY KEY, fingerprint BLOB, shas BLOB)",
        ))

    def recall(self, top: str, fingerprint: bytes, count: int) -> list[str] | None:
        """The ``count`` sha256s remembered for ``top`` under this fingerprint, else None."""
        row = self.db.fetch_one("SELECT fingerprint, shas FROM walks WHERE top=?", (top,))
        if row is None or row[0] != fingerprint or len(row[1]) != 32 * count:
            return None
        text = bytes(row[1]).hex()
        return [text[i : i + 64] for i in range(0, len(text), 64)]

    def remember(self, top: str, fingerprint: bytes, shas: Sequence[str]) -> None:
        try:
            packed = bytes.fromhex("".join(shas))
        except ValueError:  # not hex digests: nothing worth remembering
            return
        self.db.write("INSERT OR REPLACE INTO walks VALUES (?,?,?)", (top, fingerprint, packed))
