"""Remembered chunk lists of large files, by the file's sha256 (format 2).

Cutting a file into chunks depends only on its bytes and the chunker's parameters, so the
list is kept per (sha256, parameters) in this machine's state database: re-logging an
unchanged 1 GiB checkpoint cuts nothing. A lost row only costs cutting again.
"""
from __future__ import annotations

from pathlib import Path

from .state_db import StateDb

Chunks = tuple[tuple[str, int], ...]


class ChunkMemory:
    def __init__(self, db_path: Path) -> None:
        self.db = StateDb(Path(db_path), (
            "CREATE TABLE IF NOT EXISTS chunk_lists (sha256 TEXT, params TEXT, chunks BLOB,"
            " PRIMARY KEY (sha256, params))",
        ))

    def get(self, sha256: str, params: str) -> Chunks | None:
        query = "SELECT chunks FROM chunk_lists WHERE sha256=? AND params=?"
        row = self.db.fetch_one(query, (sha256, params))
        return _decode(row[0]) if row else None

    def put(self, sha256: str, params: str, chunks: Chunks) -> None:
        self.db.write("INSERT OR REPLACE INTO chunk_lists VALUES (?,?,?)", (sha256, params, _encode(chunks)))


def _encode(chunks: Chunks) -> bytes:
    return b"".join(bytes.fromhex(sha) + length.to_bytes(8, "big") for sha, length in chunks)


def _decode(data: bytes) -> Chunks | None:
    if len(data) % 40:
        return None
    return tuple((data[i : i + 32].hex(), int.from_bytes(data[i + 32 : i + 40], "big"))
                 for i in range(0, len(data), 40))
