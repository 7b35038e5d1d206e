"""Where chunks live (format 2): pack indexes, fetched once and kept on this machine.

A pack never changes once written, and neither does its index (``index/<2 hex>/<pack>.idx``),
so each index is fetched at most once per machine and kept under ``<cache>/packs-index/``.
Readers and writers first look in the packs a version names (its ``packs`` hint: a few small
GETs), and only for what is still missing list the store's whole ``index/`` (gc may have
repacked a chunk elsewhere, or another artifact holds it).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from backends import Backend

from . import keys
from .errors import IntegrityError
from .packs import parse_index
from .tempnames import temp_beside


@dataclass(frozen=True)
class Location:
    """A chunk's bytes: ``length`` bytes at ``offset`` in pack ``pack``."""

    pack: str
    offset: int
    length: int


class PackIndexes:
    """Pack indexes of one store, loaded on demand; ``locate`` maps chunk ids to locations."""

    def __init__(self, backend: Backend, cache_root: Path, workers: int = 16) -> None:
        self.backend = backend
        self.root = Path(cache_root) / "packs-index"
        self.workers = workers
        self._loaded: dict[str, dict[str, tuple[int, int]]] = {}
        self._where: dict[str, Location] = {}
        """Every loaded chunk's location (the first pack loaded that holds it): one look-up each."""

    # -- loading ---------------------------------------------------------------------------
    def load(self, pack_ids: Iterable[str]) -> set[str]:
        """Load these packs' indexes (from disk, else the store); returns the ids whose index is
        gone from the store (their packs were collected)."""
        todo = sorted(set(pack_ids) - set(self._loaded))
        if not todo:
            return set()
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(todo)))) as pool:
            found = list(pool.map(self._read_index, todo))
        gone = set()
        for pack_id, entries in zip(todo, found):
            if entries is None:
                gone.add(pack_id)
            else:
                self._add(pack_id, entries)
        return gone

    def add_written(self, pack_id: str, index: bytes, entries: Mapping[str, tuple[int, int]]) -> None:
        """Know a pack this process has just uploaded (its index kept on disk too), so that a later
        ``load_all`` does not fetch its index back: a cold GiB writes 64 of them."""
        if pack_id not in self._loaded:
            self._add(pack_id, dict(entries))
            _keep(self.root / pack_id[:2] / f"{pack_id}.idx", index)

    def _add(self, pack_id: str, entries: dict[str, tuple[int, int]]) -> None:
        self._loaded[pack_id] = entries
        for chunk_id, (offset, length) in entries.items():
            self._where.setdefault(chunk_id, Location(pack_id, offset, length))

    def _read_index(self, pack_id: str) -> dict[str, tuple[int, int]] | None:
        key = keys.pack_index(pack_id)
        local = self.root / pack_id[:2] / f"{pack_id}.idx"
        try:
            return parse_index(local.read_bytes(), key)
        except (OSError, IntegrityError):
            pass  # not here yet, or damaged on disk: fetch it again
        try:
            data = self.backend.read(key)
        except FileNotFoundError:
            return None
        entries = parse_index(data, key)
        _keep(local, data)
        return entries

    def load_all(self) -> None:
        """Load the index of every pack in the store (listing ``index/``; new ones only are read)."""
        self.load(keys.pack_id_of_index_key(info.key) for info in self.backend.list(keys.pack_index_prefix()))

    # -- finding ---------------------------------------------------------------------------
    def entries_of(self, pack_id: str) -> dict[str, tuple[int, int]]:
        """chunk id -> (offset, length) in a loaded pack."""
        return self._loaded.get(pack_id, {})

    def locate(self, chunk_ids: Iterable[str], hints: Iterable[str] = (),
               search_all: bool = True) -> dict[str, Location]:
        """Locations of those ``chunk_ids`` found in the hinted packs, then (with ``search_all``)
        anywhere in the store; chunks found nowhere are left out."""
        wanted = set(chunk_ids)
        self.load(hints)  # loaded first, so their chunks are found there
        found = self._find(wanted)
        if len(found) < len(wanted) and search_all:
            self.load_all()
            found.update(self._find(wanted - found.keys()))
        return found

    def _find(self, wanted: set[str]) -> dict[str, Location]:
        where = self._where
        return {chunk_id: where[chunk_id] for chunk_id in wanted if chunk_id in where}

    def holds(self, chunk_id: str) -> bool:
        """Whether a loaded pack index names the chunk (no request)."""
        return chunk_id in self._where

    def forget(self, pack_id: str) -> None:
        """Drop a pack that turned out to be gone, so a later ``locate`` looks elsewhere."""
        entries = self._loaded.pop(pack_id, {})
        for chunk_id in entries:
            if self._where.get(chunk_id, Location("", 0, 0)).pack == pack_id:
                del self._where[chunk_id]
        for other, held in self._loaded.items():  # another loaded pack may hold a copy
            for chunk_id in entries.keys() & held.keys():
                offset, length = held[chunk_id]
                self._where.setdefault(chunk_id, Location(other, offset, length))


def _keep(path: Path, data: bytes) -> None:
    """Save an index on disk (temp file, then rename): never a half-written one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_beside(path)
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        pass  # only a later re-fetch is lost
