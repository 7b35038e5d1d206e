"""Where chunks live (format 2): pack indexes, fetched once and kept on this machine.

A pack never changes once written, and neither does its index (``index/<2 hex>/<pack>.idx``),
so each index is fetched at most once per machine and kept under ``<cache>/packs-index/``.
Readers and writers first look in the packs a version names (its ``packs`` hint: a few small
GETs), and only for what is still missing list the store's whole ``index/`` (gc may have
repacked a chunk elsewhere, or another artifact holds it).

An index loaded here can outlive its pack: gc rewrites a mostly-dead pack into a new one and
then deletes it. A reader that then finds the pack gone calls ``refresh``: the pack is forgotten
(here and on disk), the store's ``index/`` is listed again and the new indexes loaded.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from backends import Backend

from . import keys
from .errors import IntegrityError
from .index_sets import SET_WORTH, listed_sets, read_sets
from .packs import encode_index, parse_index
from .tempnames import keep_copy


@dataclass(frozen=True, slots=True)
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
        self._loaded: dict[str, Mapping[str, tuple[int, int]]] = {}
        self._where: dict[str, str] = {}
        """Every loaded chunk's pack (the first loaded that holds it): one look-up each. Its offset
        and length stay in that pack's entries; a million chunks, no million ``Location``s."""
        self._lock = threading.RLock()  # downloads look chunks up (and refresh) from many threads

    # -- loading ---------------------------------------------------------------------------
    def load(self, pack_ids: Iterable[str]) -> set[str]:
        """Load these packs' indexes (from disk, else the store; many at once from the store's
        index sets first); returns the ids whose index is gone from the store (their packs were
        collected)."""
        todo = sorted(set(pack_ids) - set(self._loaded))
        if len(todo) >= SET_WORTH:
            self._load_from_sets(set(todo))
            todo = [pack_id for pack_id in todo if pack_id not in self._loaded]
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

    def _load_from_sets(self, wanted: set[str]) -> None:
        """Take the ``wanted`` packs' indexes from the store's index sets (only those: a set may
        still name packs deleted since)."""
        for _, packs in read_sets(self.backend, self.root / "sets", listed_sets(self.backend), self.workers):
            for pack_id in wanted & packs.keys():
                self._add(pack_id, packs[pack_id])

    def add_written(self, pack_id: str, index: bytes, entries: Mapping[str, tuple[int, int]]) -> None:
        """Know a pack this process has just uploaded (its index kept on disk too), so that a later
        ``load_all`` does not fetch its index back: a cold GiB writes 64 of them."""
        if pack_id not in self._loaded:
            self._add(pack_id, entries)
            keep_copy(self.root / pack_id[:2] / f"{pack_id}.idx", index)

    def _add(self, pack_id: str, entries: Mapping[str, tuple[int, int]]) -> None:
        with self._lock:
            if pack_id in self._loaded:
                return
            self._loaded[pack_id] = entries
            where = self._where
            for chunk_id in entries:
                where.setdefault(chunk_id, pack_id)

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
        keep_copy(local, data)
        return entries

    def load_all(self) -> None:
        """Load the index of every pack in the store (listing ``index/``; new ones only are read)."""
        self.load(self.listed())

    def listed(self) -> set[str]:
        """The packs whose index the store lists now."""
        return {keys.pack_id_of_index_key(info.key) for info in self.backend.list(keys.pack_index_prefix())}

    def index_bytes(self, pack_id: str) -> bytes | None:
        """A pack's index object as stored (this machine's copy, else the store's); None if gone."""
        entries = self._loaded.get(pack_id) or self._read_index(pack_id)
        if entries is None:
            return None
        return encode_index(entries, sum(length for _, length in entries.values()))

    def refresh(self, gone: Iterable[str]) -> None:
        """After a read found the packs ``gone`` missing (gc rewrote or removed them since their
        indexes were loaded): forget them, forget every loaded pack whose index is no longer
        listed, and load the indexes of packs that appeared (a repack's new ones). A caller that
        finds a pack another thread has just refreshed away costs no second listing."""
        with self._lock:
            gone = set(gone)
            if not gone & self._loaded.keys():
                return
            for pack_id in gone:
                self.forget(pack_id)
            listed = self.listed()
            for pack_id in set(self._loaded) - listed:
                self.forget(pack_id)
            # not ``gone`` again: its index may outlive it (a collector killed between the deletes)
            self.load(listed - gone)

    # -- finding ---------------------------------------------------------------------------
    def entries_of(self, pack_id: str) -> Mapping[str, tuple[int, int]]:
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
        where, loaded = self._where, self._loaded
        found = {}
        for chunk_id in wanted:
            pack_id = where.get(chunk_id)
            if pack_id is not None:
                offset, length = loaded[pack_id][chunk_id]
                found[chunk_id] = Location(pack_id, offset, length)
        return found

    def take_found(self, wanted: set[str], hints: Iterable[str] = ()) -> set[str]:
        """Remove from ``wanted`` the chunks found as ``locate`` finds them (hinted packs first,
        then the whole store); returns the packs holding them. In place, with no ``Location``
        each: what a writer checking a million chunks needs."""
        self.load(hints)
        packs = self._take(wanted)
        if wanted:
            self.load_all()
            packs |= self._take(wanted)
        return packs

    def _take(self, wanted: set[str]) -> set[str]:
        where = self._where
        found = [chunk_id for chunk_id in wanted if chunk_id in where]
        wanted.difference_update(found)
        return {where[chunk_id] for chunk_id in found}

    def holds(self, chunk_id: str) -> bool:
        """Whether a loaded pack index names the chunk (no request)."""
        return chunk_id in self._where

    def forget(self, pack_id: str) -> None:
        """Drop a pack that turned out to be gone (and its index kept on disk), so a later
        ``locate`` looks elsewhere. It may be loaded again later (its index can outlive it, and a
        pack can come back: a writer sending the same chunks again); a chunk already located in
        another pack keeps that location."""
        with self._lock:
            entries = self._loaded.pop(pack_id, {})
            for chunk_id in entries:
                if self._where.get(chunk_id) == pack_id:
                    del self._where[chunk_id]
            for other, held in self._loaded.items():  # another loaded pack may hold a copy
                for chunk_id in entries.keys() & held.keys():
                    self._where.setdefault(chunk_id, other)
        (self.root / pack_id[:2] / f"{pack_id}.idx").unlink(missing_ok=True)
