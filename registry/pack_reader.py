"""Reading files of format-2 versions out of packs into the download cache.

The chunks a download needs are grouped by pack, neighbouring ranges are coalesced
(``packs.plan_reads``) and fetched by ranged GETs, several in flight. Every chunk is checked
against its id as it arrives; a file of one chunk is then a verified cache entry at once, a
file of many is assembled in a temp file beside its entry and renamed into place once its
sha256 matches. That sha256 is computed in file order while the chunks land (``_Assembly``),
so the assembled file is never read again. Nothing unverified ever becomes an entry, and the
caller places files from the cache exactly as for format-1 blobs. Where placing a file means
copying its bytes (no reflink, no hardlink), the caller may name a second new file per blob
(``copies``, beside its destination): each chunk is written there too as it lands, so the
bytes are never copied from the cache afterwards.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
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

Progress = Callable[[int], None]


class _Assembly:
    """A file of several chunks being written into its temp file as chunks arrive, in any order,
    and hashed in file order meanwhile: whichever thread lands the chunk the digest waits for
    hashes it (from the bytes it holds), then any landed chunks after it (read back while they
    are still in the page cache), so the digest is complete soon after the last chunk lands."""

    def __init__(self, entry: FileEntry, temp: Path, fd: int, copy_fd: int = -1) -> None:
        self.entry, self.temp, self.fd, self.copy_fd = entry, temp, fd, copy_fd
        self.lengths = [length for _, length in entry.chunk_list()]
        self.offsets = list(itertools.accumulate(self.lengths, initial=0))
        self.landed = [False] * len(self.lengths)
        self.remaining = len(self.lengths)
        self.digest = hashlib.sha256()
        self.hashed = 0
        """Chunks hashed so far (a prefix of the file)."""
        self._lock = threading.Lock()
        self._hashing = threading.Lock()

    def land(self, index: int, data: memoryview) -> None:
        """Write chunk ``index`` (verified) at its offset and advance the digest if it can."""
        _write_all_at(self.fd, data, self.offsets[index])
        if self.copy_fd >= 0:
            _write_all_at(self.copy_fd, data, self.offsets[index])
        with self._lock:
            self.landed[index] = True
            self.remaining -= 1
        self._advance(index, data)

    def _advance(self, index: int, data: memoryview) -> None:
        while self._hashing.acquire(blocking=False):  # one thread hashes at a time, in file order
            try:
                while self.hashed < len(self.landed) and self._is_landed(self.hashed):
                    at = self.hashed
                    self.digest.update(data if at == index else self._read_back(at))
                    self.hashed += 1
            finally:
                self._hashing.release()
            if not (self.hashed < len(self.landed) and self._is_landed(self.hashed)):
                return  # else a chunk landed while the digest was released: take it too

    def _is_landed(self, index: int) -> bool:
        with self._lock:
            return self.landed[index]

    def _read_back(self, index: int) -> bytes:
        length, offset = self.lengths[index], self.offsets[index]
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise IntegrityError(f"{self.entry.path!r}: its temp file {self.temp} was truncated meanwhile")
        return data


class PackedReader:
    """Fills a cache with files whose chunks are in packs."""

    def __init__(self, backend: Backend, indexes: PackIndexes, cache: Cache,
                 workers: int = READS_IN_FLIGHT) -> None:
        self.backend = backend
        self.indexes = indexes
        self.cache = cache
        self.workers = workers

    def fetch(self, entries: Iterable[FileEntry], hints: Iterable[str] = (),
              progress: Progress | None = None, copies: Mapping[str, Path] | None = None) -> list[FileEntry]:
        """Fetch ``entries`` into the cache; returns those not found in any pack (stored whole as
        format-1 blobs, for the caller to fetch as such). A chunk of a multi-chunk file found
        nowhere is ``NotFoundError``.

        ``copies``: sha256 -> a new file to write with the same bytes (created here; once the
        fetch returns it holds the verified blob, for the caller to rename into place or remove;
        if the fetch fails, it is removed)."""
        entries = list({e.sha256: e for e in entries}.values())
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
        packed = [e for e in entries if e.sha256 not in loose_shas]
        if packed:
            wanted_copies = {e.sha256: copies[e.sha256] for e in packed if copies and e.sha256 in copies}
            self._read_packed(packed, located, progress, wanted_copies)
        return loose

    def _read_packed(self, entries: list[FileEntry], located: dict[str, Location],
                     progress: Progress | None, copies: dict[str, Path]) -> None:
        uses: dict[str, list[tuple[FileEntry, int]]] = defaultdict(list)  # chunk -> (file, index), each use
        assemblies: dict[str, _Assembly] = {}
        for entry in entries:
            for index, (chunk, _) in enumerate(entry.chunk_list()):
                uses[chunk].append((entry, index))
        made: list[Path] = []  # copies created so far, removed unless the fetch succeeds
        done = False
        try:
            for entry in entries:
                copy = copies.get(entry.sha256)
                copy_fd = -1
                if copy is not None:
                    copy_fd = os.open(copy, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
                    made.append(copy)
                if entry.chunks is not None:
                    assemblies[entry.sha256] = self._start_assembly(entry, copy_fd)
                elif copy_fd >= 0:
                    os.close(copy_fd)  # a file of one chunk: written there whole when it lands
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
            done = True
        finally:
            for assembly in assemblies.values():
                for fd in (assembly.fd, assembly.copy_fd):
                    if fd >= 0:
                        os.close(fd)
                assembly.fd = assembly.copy_fd = -1
                assembly.temp.unlink(missing_ok=True)
            if not done:
                for copy in made:
                    copy.unlink(missing_ok=True)
            self.cache.touch([])

    def _read_span(self, pack: str, span: Span, uses: dict[str, list[tuple[FileEntry, int]]],
                   assemblies: dict[str, _Assembly], progress: Progress | None,
                   copies: dict[str, Path]) -> None:
        key = keys.pack(pack)

        def describe(chunk: str) -> str:
            return f"file {uses[chunk][0][0].path!r}"

        try:
            data = self.backend.read_range(key, span.start, span.end)
        except FileNotFoundError:
            raise NotFoundError(f"pack {key} ({describe(span.items[0][0])}) is missing from the store: "
                                "re-log the artifact that holds it") from None
        for chunk, view in split_span(data, span, key, describe):
            for entry, index in uses[chunk]:
                assembly = assemblies.get(entry.sha256)
                if assembly is None:  # a file of one chunk, just verified
                    self.cache.adopt(entry.sha256, bytes(view))
                    if entry.sha256 in copies:
                        _write_file(copies[entry.sha256], view)
                else:
                    assembly.land(index, view)
            if progress:
                progress(len(view))

    def _start_assembly(self, entry: FileEntry, copy_fd: int = -1) -> _Assembly:
        temp = self.cache.temp_for(entry.sha256)
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        for out in (fd, copy_fd):
            if out >= 0:
                os.ftruncate(out, entry.size)
        return _Assembly(entry, temp, fd, copy_fd)

    def _finish_assembly(self, assembly: _Assembly) -> None:
        entry = assembly.entry
        if assembly.remaining or assembly.hashed != len(assembly.lengths):
            raise IntegrityError(f"{entry.path!r} could not be assembled from its chunks")
        if assembly.digest.hexdigest() != entry.sha256:
            raise IntegrityError(
                f"{entry.path!r}: its chunks do not add up to its sha256 {entry.sha256[:12]}...: "
                "the version's manifest is corrupt; re-log it"
            )
        for fd in (assembly.fd, assembly.copy_fd):
            if fd >= 0:
                os.close(fd)
        assembly.fd = assembly.copy_fd = -1
        self.cache.adopt(entry.sha256, assembly.temp)


def _write_file(path: Path, data: memoryview) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        _write_all_at(fd, data, 0)
    finally:
        os.close(fd)


def _write_all_at(fd: int, data: memoryview, offset: int) -> None:
    view = data
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
