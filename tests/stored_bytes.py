"""Where a logged file's bytes live in a store, and ways to damage them behind the registry's back.

Format 1 (and format 2 on a local directory) keeps a file whole, as the blob
``blobs/sha256/<2 hex>/<rest>``. Format 2 on S3 keeps it in packs: a small file as one chunk,
a large one as several, each a byte range of some ``packs/<2 hex>/<id>.pack``. Tests about
corrupt, missing or counted bytes ask ``StoredFile`` where those bytes are, found the way a
reader finds them (the pack indexes), so the same test holds for either layout.

>>> stored = StoredFile.of(store_url, art, "dir/b.txt")    # doctest: +SKIP
>>> stored.replace(b"BRAVO\\n")                  # same size, other bytes
>>> stored.restore()                            # the objects as they were
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import registry
from backends import Backend, open_backend
from registry import keys
from registry.packs import index_of_pack
from registry.records import FileEntry
from registry.store import Store, open_store
from store_contents import holdings


@dataclass(frozen=True)
class Piece:
    """Bytes ``[start, end)`` of object ``key``: a whole loose blob, or one chunk's range in a pack."""

    key: str
    start: int
    end: int
    packed: bool


@dataclass
class StoredFile:
    """One file's bytes as the store holds them, in file order."""

    entry: FileEntry
    pieces: list[Piece]
    raw: Backend
    _saved: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, url: str, art: registry.Artifact, path: str) -> StoredFile:
        """The stored bytes of ``path`` in a logged version of the store at ``url``."""
        entry = next(f for f in art.file_list().files if f.path == path)
        return cls.at(url, entry)

    @classmethod
    def at(cls, url: str, entry: FileEntry) -> StoredFile:
        store = open_store(url)
        chunks = entry.chunk_list()
        located = store.pack_indexes.locate([c for c, _ in chunks])
        pieces = []
        for chunk, length in chunks:
            where = located.get(chunk)
            if where is None:
                pieces.append(Piece(keys.blob(chunk), 0, length, packed=False))
            else:
                pieces.append(Piece(keys.pack(where.pack), where.offset, where.offset + where.length, packed=True))
        return cls(entry, pieces, open_backend(url))

    # -- where -------------------------------------------------------------------------------
    @property
    def packed(self) -> bool:
        return any(p.packed for p in self.pieces)

    @property
    def keys(self) -> list[str]:
        """The objects holding the bytes, each once, in file order."""
        return list(dict.fromkeys(p.key for p in self.pieces))

    def read(self) -> bytes:
        """The file's bytes as stored (unverified)."""
        return b"".join(self.raw.read_range(p.key, p.start, p.end) if p.packed else self.raw.read(p.key)
                        for p in self.pieces)

    # -- damage --------------------------------------------------------------------------------
    def replace(self, data: bytes) -> None:
        """Make the stored bytes ``data``. A loose blob is rewritten; in a pack ``data`` takes the
        place of the file's range, so a length change moves the bytes after it. A file of
        several pieces takes same-size ``data`` only (each piece gets its slice)."""
        if len(self.pieces) == 1:
            self._splice(self.pieces[0], data)
            return
        assert len(data) == self.entry.size, "a file of several chunks is damaged in place only"
        offset = 0
        for piece in self.pieces:
            length = piece.end - piece.start
            self._splice(piece, data[offset : offset + length])
            offset += length

    def flip_last_byte(self) -> None:
        data = bytearray(self.read())
        data[-1] ^= 1
        self.replace(bytes(data))

    def delete(self) -> None:
        """Remove the objects holding the bytes (a pack goes whole, its index stays: what a
        collector that died between the two deletes leaves)."""
        for key in self.keys:
            self._save(key)
            self.raw.delete(key)

    def restore(self) -> None:
        """Put every object this helper changed back as it was."""
        for key, body in self._saved.items():
            self.raw.write(key, body)
        self._saved.clear()

    def _save(self, key: str) -> None:
        if key not in self._saved:
            self._saved[key] = self.raw.read(key)

    def _splice(self, piece: Piece, data: bytes) -> None:
        self._save(piece.key)
        if not piece.packed:
            self.raw.write(piece.key, data)
            return
        current = self.raw.read(piece.key)  # earlier splices of this pack included
        self.raw.write(piece.key, current[: piece.start] + data + current[piece.end :])


def file_byte_keys(store: Store, gets: list[str]) -> list[str]:
    """The keys among ``gets`` that hold files' bytes: loose blobs and packs (manifest pages are
    blobs too: a test that must not count them says so)."""
    prefix = getattr(store.backend, "prefix", "")
    return [k for k in gets if k.startswith(prefix + keys.blob_prefix()) or k.startswith(prefix + keys.packs_prefix())]


def stored_bytes_match_their_names(url: str) -> int:
    """Every loose blob hashes to its key, every pack to its id and every chunk in it to its
    own id; returns how many objects were checked."""
    backend = open_backend(url)
    checked = 0
    for info in backend.list(keys.blob_prefix()):
        assert hashlib.sha256(backend.read(info.key)).hexdigest() == keys.sha_of_blob_key(info.key), info.key
        checked += 1
    for info in backend.list(keys.packs_prefix()):
        body = backend.read(info.key)
        pack_id = info.key.rsplit("/", 1)[-1].removesuffix(".pack")
        assert hashlib.sha256(body).hexdigest() == pack_id, info.key
        for chunk, (offset, length) in index_of_pack(body, info.key).items():
            assert hashlib.sha256(body[offset : offset + length]).hexdigest() == chunk, f"{info.key}: {chunk}"
        checked += 1
    return checked


def holds_chunk(url: str, chunk_id: str) -> bool:
    """Whether the store holds these bytes anywhere: as a loose blob or in a pack."""
    return chunk_id in holdings(url)
