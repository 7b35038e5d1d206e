"""Reading files of format-2 versions out of packs into the download cache.

The chunks a download needs are grouped by pack, neighbouring ranges are coalesced
(``packs.plan_reads``) and fetched by ranged GETs, several in flight. A file of one chunk
is checked against its id as it arrives and is then a verified cache entry at once; a file of
many is assembled in a temp file beside its entry and renamed into place once its sha256
matches: that hash runs in file order on a thread of its own while the chunks land
(``assembly``), reads starting in the order it needs them. Its chunks are not hashed a second
time on arrival (a pass of sha256 over every byte saved): only when the file does not match are
they checked one by one, to name the bad chunk and its pack. Nothing unverified ever becomes an
entry, and the caller places files from the cache exactly as for format-1 blobs. Where placing a file means
copying its bytes (no reflink, no hardlink), the caller may name a second new file per blob
(``copies``, beside its destination): its bytes are written there too as they land, so they
are never copied from the cache afterwards.

A pack can vanish under a reader: gc rewrites a mostly-dead pack into a new one, then deletes
it. A ranged GET that finds its pack gone makes the reader refresh the pack indexes (the new
pack's index is stored before the old pack is deleted) and fetch what it still lacks once
more; only a pack missing again is an error. ``read_pack_chunks`` is the same ranged,
verified read for gc, which copies live chunks out of such packs.
"""
from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from backends import Backend

from . import keys
from .assembly import Assembly, FileHasher, write_all_at
from .cache import Cache
from .errors import IntegrityError, NotFoundError
from .pack_locations import Location, PackIndexes
from .packs import Span, corrupt_chunk, plan_reads, split_span
from .records import FileEntry
from .tempnames import remove_if_present

SPAN_MAX = 8 * 1024 * 1024
"""Largest coalesced ranged GET: with ``READS_IN_FLIGHT`` of them, ~64 MiB held at most. Whole
packs (~17 MiB) would save the server a third of its CPU, but obstore's buffers that large are
fresh memory each time (glibc maps them anew), which cost a cold W3 pull 3x its CPU when the
machine's free memory was cold (measured: the second download of a benchmark step)."""
GAP = 1024 * 1024
"""Unwanted bytes between two wanted chunks that are read through rather than split into two GETs."""
READS_IN_FLIGHT = 8

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
        """Fetch ``entries`` into the cache. A file named in ``copies`` is also written to the new
        file named there (a download's temp file, saving it a copy); returns the sha256s whose
        file holds their verified bytes (any other named file is removed or never made). Files
        found in no pack (stored whole as format-1 blobs) are left for the caller to fetch as such;
        a chunk of a multi-chunk file found nowhere is ``NotFoundError``, and so is a pack still
        missing after the pack indexes were refreshed."""
        entries = list({e.sha256: e for e in entries}.values())
        sink = _Copies(copies or {})
        packed, located = self._plan(entries, hints)
        if not packed:
            return sink.written
        try:
            self._read_packed(packed, located, progress, sink)
            return sink.written
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
        return sink.written

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
        uses: dict[str, list[tuple[FileEntry, int]]] = defaultdict(list)  # chunk -> (file, index), each use
        assemblies: dict[str, Assembly] = {}
        for entry in entries:
            for index, (chunk, _) in enumerate(entry.chunk_list()):
                uses[chunk].append((entry, index))
        hasher = FileHasher()
        done = False
        try:
            for entry in entries:
                if entry.chunks is not None:
                    assemblies[entry.sha256] = self._start_assembly(entry, copies.open(entry.sha256))
            spans = _in_file_order(_spans(uses, located), uses, entries)
            # chunks whose every use is in a file of several: that file's own hash checks them
            file_checked = frozenset(chunk for chunk, places in uses.items()
                                     if all(entry.sha256 in assemblies for entry, _ in places)) \
                if assemblies else frozenset()

            def read(job: tuple[str, Span]) -> None:
                pack, span = job
                with hasher.reading():
                    self._read_span(pack, span, uses, assemblies, hasher, progress, copies, file_checked)

            with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(spans)))) as pool:
                list(pool.map(read, spans))
            hasher.finish()
            for assembly in assemblies.values():
                self._finish_assembly(assembly, located)
                copies.done(assembly.entry.sha256)
            done = True
        finally:
            hasher.abandon()  # (ended already, unless something failed)
            for assembly in assemblies.values():
                assembly.close()
                assembly.temp.unlink(missing_ok=True)
            if not done:
                copies.discard_unfinished()
            self.cache.touch([])

    def _read_span(self, pack: str, span: Span, uses: dict[str, list[tuple[FileEntry, int]]],
                   assemblies: dict[str, Assembly], hasher: FileHasher, progress: Progress | None,
                   copies: _Copies, file_checked: frozenset[str]) -> None:
        key = keys.pack(pack)

        def describe(chunk: str) -> str:
            return f"file {uses[chunk][0][0].path!r}"

        try:
            data = self.backend.read_range_view(key, span.start, span.end)
        except FileNotFoundError:
            raise _PackGone(pack, describe(span.items[0][0])) from None
        for chunk, view in split_span(data, span, key, describe, checked_later=file_checked):
            for entry, index in uses[chunk]:
                assembly = assemblies.get(entry.sha256)
                if assembly is None:  # a file of one chunk, just verified
                    body = bytes(view)
                    self.cache.adopt(entry.sha256, body)
                    copies.write(entry.sha256, body)
                else:
                    assembly.write(index, view)
                    hasher.landed(assembly, index)
            if progress:
                progress(len(view))

    def _start_assembly(self, entry: FileEntry, copy_fd: int = -1) -> Assembly:
        temp = self.cache.temp_for(entry.sha256)
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        for out in (fd, copy_fd):
            if out >= 0:
                os.ftruncate(out, entry.size)
        return Assembly(entry, temp, fd, copy_fd)

    def _finish_assembly(self, assembly: Assembly, located: Mapping[str, Location]) -> None:
        entry = assembly.entry
        if not assembly.complete:
            raise IntegrityError(f"{entry.path!r} could not be assembled from its chunks")
        if assembly.digest.hexdigest() != entry.sha256:
            bad = assembly.first_bad_chunk()
            if bad is not None:
                raise corrupt_chunk(bad, keys.pack(located[bad].pack), f" (file {entry.path!r})")
            raise IntegrityError(
                f"{entry.path!r}: its chunks do not add up to its sha256 {entry.sha256[:12]}...: "
                "the version's manifest is corrupt; re-log it"
            )
        assembly.close()
        self.cache.adopt(entry.sha256, assembly.temp)


Uses = Mapping[str, list[tuple[FileEntry, int]]]
"""chunk id -> (file, index) of each place it fills."""


def _spans(uses: Uses, located: Mapping[str, Location]) -> list[tuple[str, Span]]:
    """The ranged reads that fetch every chunk in ``uses``: per pack, neighbours coalesced."""
    by_pack: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for chunk in uses:
        where = located[chunk]
        by_pack[where.pack].append((chunk, where.offset, where.length))
    return [(pack, span) for pack, items in by_pack.items()
            for span in plan_reads(items, gap=GAP, max_span=SPAN_MAX)]


def _in_file_order(spans: list[tuple[str, Span]], uses: Uses,
                   entries: list[FileEntry]) -> list[tuple[str, Span]]:
    """``spans`` sorted by the first place in the files (in ``entries`` order) that they fill: the
    reads start in the order the file hash needs them, so the chunk it waits for is always in a
    read already under way (a file whose chunks are spread over packs in another order included)."""
    rank = {entry.sha256: number for number, entry in enumerate(entries)}

    def first_use(job: tuple[str, Span]) -> tuple[int, int]:
        return min((rank[entry.sha256], index) for chunk, _, _ in job[1].items
                   for entry, index in uses[chunk])

    return sorted(spans, key=first_use)


class _Copies:
    """Where files also go (sha256 -> a new file, which a download renames into place), which of
    those files exist, and which hold their verified bytes. Shared by the reading threads: a
    dict item or set member added is atomic."""

    def __init__(self, to: Mapping[str, str]) -> None:
        self.to = to
        self.created: dict[str, str] = {}
        self.written: set[str] = set()

    def open(self, sha256: str) -> int:
        """Create the file named for ``sha256`` (-1 if none is)."""
        path = self.to.get(sha256)
        if path is None:
            return -1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.created[sha256] = path
        return fd

    def write(self, sha256: str, data: bytes) -> None:
        """Write a verified file of one chunk to its named file, if it has one."""
        fd = self.open(sha256)
        if fd < 0:
            return
        try:
            write_all_at(fd, memoryview(data), 0)
        finally:
            os.close(fd)
        self.written.add(sha256)

    def done(self, sha256: str) -> None:
        """An assembled file was verified: its named file (written as its chunks landed) holds it."""
        if sha256 in self.created:
            self.written.add(sha256)

    def discard_unfinished(self) -> None:
        """After a failure: remove the named files that do not hold verified bytes."""
        for sha256, path in list(self.created.items()):
            if sha256 not in self.written:
                remove_if_present(path)


