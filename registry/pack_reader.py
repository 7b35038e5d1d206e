"""Reading files of format-2 versions out of packs into the download cache.

The chunks a download needs are grouped by pack, neighbouring ranges are coalesced
(``packs.plan_reads``) and fetched by ranged GETs, several in flight. Every chunk is checked
against its id as it arrives; a file of one chunk is then a verified cache entry at once, a
file of many is assembled in a temp file beside its entry and checked against its sha256
before it is renamed into place. So nothing unverified ever becomes an entry, and the caller
places files from the cache exactly as for format-1 blobs.

A pack can vanish under a reader: gc rewrites a mostly-dead pack into a new one, then deletes
it. A ranged GET that finds its pack gone makes the reader refresh the pack indexes (the new
pack's index is stored before the old pack is deleted) and fetch what it still lacks once
more; only a pack missing again is an error. ``read_pack_chunks`` is the same ranged,
verified read for gc, which copies live chunks out of such packs.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from backends import Backend

from . import keys
from .cache import Cache
from .errors import IntegrityError, NotFoundError
from .pack_locations import Location, PackIndexes
from .packs import Span, plan_reads, split_span
from .records import FileEntry

SPAN_MAX = 8 * 1024 * 1024
"""Largest coalesced ranged GET: with ``READS_IN_FLIGHT`` of them, ~64 MiB held at most."""
GAP = 1024 * 1024
"""Unwanted bytes between two wanted chunks that are read through rather than split into two GETs."""
READS_IN_FLIGHT = 8
HASH_BLOCK = 8 * 1024 * 1024

Progress = Callable[[int], None]


class _PackGone(Exception):
    """A ranged GET found ``pack`` missing (its location was stale)."""

    def __init__(self, pack: str, what: str) -> None:
        super().__init__(pack)
        self.pack, self.what = pack, what


def read_pack_chunks(backend: Backend, pack_id: str, wanted: Mapping[str, tuple[int, int]]
                     ) -> Iterator[tuple[str, memoryview]]:
    """The chunks ``wanted`` (id -> (offset, length)) of one pack, by coalesced ranged GETs in
    offset order, each checked against its id; ``FileNotFoundError`` if the pack is gone."""
    key = keys.pack(pack_id)
    for span in plan_reads(((c, o, n) for c, (o, n) in wanted.items()), gap=GAP, max_span=SPAN_MAX):
        yield from split_span(backend.read_range(key, span.start, span.end), span, key)


@dataclass
class _Assembly:
    """A file of several chunks being written into its temp file as chunks arrive."""

    entry: FileEntry
    temp: Path
    fd: int
    remaining: int
    lock: threading.Lock = field(default_factory=threading.Lock)


class PackedReader:
    """Fills a cache with files whose chunks are in packs."""

    def __init__(self, backend: Backend, indexes: PackIndexes, cache: Cache,
                 workers: int = READS_IN_FLIGHT) -> None:
        self.backend = backend
        self.indexes = indexes
        self.cache = cache
        self.workers = workers

    def fetch(self, entries: Iterable[FileEntry], hints: Iterable[str] = (),
              progress: Progress | None = None, copies: Mapping[str, str] | None = None) -> set[str]:
        """Fetch ``entries`` into the cache. A file of one chunk named in ``copies`` is also written
        to the new file named there (a download's temp file, saving it a copy); returns the
        sha256s written so. Files found in no pack (stored whole as format-1 blobs) are left for
        the caller to fetch as such; a chunk of a multi-chunk file found nowhere is ``NotFoundError``,
        and so is a pack still missing after the pack indexes were refreshed."""
        entries = list({e.sha256: e for e in entries}.values())
        written: set[str] = set()
        sink = _Copies(copies or {}, written)
        packed, located = self._plan(entries, hints)
        if not packed:
            return written
        try:
            self._read_packed(packed, located, progress, sink)
            return written
        except _PackGone as gone:  # gc repacked it since its index was loaded: look again, once
            self.indexes.refresh([gone.pack])
        lacking = self.cache.valid_entries({e.sha256: e.size for e in packed})
        packed, located = self._plan([e for e in packed if lacking[e.sha256] is None], ())
        try:
            self._read_packed(packed, located, progress, sink)
        except _PackGone as still:
            raise NotFoundError(
                f"pack {keys.pack(still.pack)} ({still.what}) is missing from the store, even after "
                "re-reading the store's pack indexes: re-log the artifact that holds it"
            ) from None
        return written

    def _plan(self, entries: list[FileEntry], hints: Iterable[str]
              ) -> tuple[list[FileEntry], dict[str, Location]]:
        """(the files in packs, where their chunks are); files stored whole are left out."""
        wanted = {chunk for e in entries for chunk, _ in e.chunk_list()}
        located = self.indexes.locate(wanted, hints)
        loose = [e for e in entries if e.chunks is None and e.sha256 not in located]
        for e in entries:
            lost = [c for c, _ in e.chunks or () if c not in located]
            if lost:
                raise NotFoundError(
                    f"chunk {lost[0][:12]}... of {e.path!r} is in no pack of the store: "
                    "re-log the artifact that holds it"
                )
        loose_shas = {e.sha256 for e in loose}
        return [e for e in entries if e.sha256 not in loose_shas], located

    def _read_packed(self, entries: list[FileEntry], located: dict[str, Location],
                     progress: Progress | None, copies: _Copies) -> None:
        uses: dict[str, list[tuple[FileEntry, int]]] = defaultdict(list)  # chunk -> (file, offset), each use
        assemblies: dict[str, _Assembly] = {}
        for entry in entries:
            offset = 0
            for chunk, length in entry.chunk_list():
                uses[chunk].append((entry, offset))
                offset += length
        try:
            for entry in entries:
                if entry.chunks is not None:
                    assemblies[entry.sha256] = self._start_assembly(entry)
            by_pack: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
            for chunk in uses:
                where = located[chunk]
                by_pack[where.pack].append((chunk, where.offset, where.length))
            spans = [(pack, span) for pack, items in by_pack.items()
                     for span in plan_reads(items, gap=GAP, max_span=SPAN_MAX)]

            def read(job: tuple[str, Span]) -> None:
                pack, span = job
                self._read_span(pack, span, uses, assemblies, progress, copies)

            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(spans)))) as pool:
                list(pool.map(read, spans))
            for assembly in assemblies.values():
                self._finish_assembly(assembly)
        finally:
            for assembly in assemblies.values():
                if assembly.fd >= 0:
                    os.close(assembly.fd)
                assembly.temp.unlink(missing_ok=True)
            self.cache.touch([])

    def _read_span(self, pack: str, span: Span, uses: dict[str, list[tuple[FileEntry, int]]],
                   assemblies: dict[str, _Assembly], progress: Progress | None, copies: _Copies) -> None:
        key = keys.pack(pack)

        def describe(chunk: str) -> str:
            return f"file {uses[chunk][0][0].path!r}"

        try:
            data = self.backend.read_range(key, span.start, span.end)
        except FileNotFoundError:
            raise _PackGone(pack, describe(span.items[0][0])) from None
        for chunk, view in split_span(data, span, key, describe):
            for entry, offset in uses[chunk]:
                assembly = assemblies.get(entry.sha256)
                if assembly is None:  # a file of one chunk, just verified
                    data = bytes(view)
                    self.cache.adopt(entry.sha256, data)
                    copies.write(entry.sha256, data)
                else:
                    _write_at(assembly, view, offset)
            if progress:
                progress(len(view))

    def _start_assembly(self, entry: FileEntry) -> _Assembly:
        temp = self.cache.temp_for(entry.sha256)
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, entry.size)
        return _Assembly(entry, temp, fd, remaining=len(entry.chunk_list()))

    def _finish_assembly(self, assembly: _Assembly) -> None:
        entry = assembly.entry
        if assembly.remaining:
            raise IntegrityError(f"{entry.path!r} could not be assembled from its chunks")
        if _sha256_of_fd(assembly.fd, entry.size) != entry.sha256:
            raise IntegrityError(
                f"{entry.path!r}: its chunks do not add up to its sha256 {entry.sha256[:12]}...: "
                "the version's manifest is corrupt; re-log it"
            )
        os.close(assembly.fd)
        assembly.fd = -1
        self.cache.adopt(entry.sha256, assembly.temp)


@dataclass
class _Copies:
    """Where single-chunk files also go (sha256 -> a new file), and which have gone there."""

    to: Mapping[str, str]
    written: set[str]

    def write(self, sha256: str, data: bytes) -> None:
        path = self.to.get(sha256)
        if path is None:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self.written.add(sha256)  # set.add is atomic: the reading threads share it


def _write_at(assembly: _Assembly, data: memoryview, offset: int) -> None:
    view = data
    while view:
        written = os.pwrite(assembly.fd, view, offset)
        view, offset = view[written:], offset + written
    with assembly.lock:
        assembly.remaining -= 1


def _sha256_of_fd(fd: int, size: int) -> str:
    """Read back in blocks (not mapped: a mapped GiB would count as a GiB of resident memory)."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        block = os.pread(fd, min(HASH_BLOCK, size - offset), offset)
        if not block:
            break
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()
