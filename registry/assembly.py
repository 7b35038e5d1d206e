"""Files of several chunks assembled in temp files as their chunks land, and hashed in file order.

A download reads a file's chunks by ranged GETs, several in flight, so they land in any order,
unchecked: the file's own sha256 is checked before its temp file becomes a cache entry (a
manifest's claim is never trusted: the cache is keyed by it and shared), and that one pass
covers every byte. Only a file that fails it has its chunks checked one by one, to name the bad
one. The hash runs in file order, one chunk after the other: the one part of a download that
cannot be spread over cores. So it runs on a thread of its own (``FileHasher``), beside the
reads, reading landed chunks back from the temp file (still in the page cache) into one reused
buffer; readers never wait for it, except that a read does not start while more than
``WINDOW`` landed bytes await hashing (then the hash would be left to finish alone after the
last chunk lands, one core busy and the other idle).
"""
from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import IntegrityError
from .records import FileEntry

WINDOW = 128 * 1024 * 1024
"""Landed bytes awaiting the file hash beyond which no new read starts (while others are in flight)."""
READ_BACK = 4 * 1024 * 1024
"""Bytes read back and hashed at a time (one buffer, reused)."""


class Assembly:
    """One file being written into its temp file (and its download copy, if any) as chunks land."""

    def __init__(self, entry: FileEntry, temp: Path, fd: int, copy_fd: int = -1) -> None:
        self.entry, self.temp, self.fd, self.copy_fd = entry, temp, fd, copy_fd
        self.lengths = [length for _, length in entry.chunk_list()]
        self.offsets = list(itertools.accumulate(self.lengths, initial=0))
        self.landed = [False] * len(self.lengths)
        self.remaining = len(self.lengths)
        self.digest = hashlib.sha256()
        self.hashed = 0
        """Chunks hashed so far (a prefix of the file); the hasher's to advance."""
        self.queued = False
        """Whether the hasher has this file in its queue (its next chunk has landed)."""

    def write(self, index: int, data: memoryview) -> None:
        """Write chunk ``index`` at its offset, in the temp file and the copy (both unseen until
        the whole file is checked)."""
        write_all_at(self.fd, data, self.offsets[index])
        if self.copy_fd >= 0:
            write_all_at(self.copy_fd, data, self.offsets[index])

    @property
    def complete(self) -> bool:
        """Every chunk landed and hashed."""
        return self.remaining == 0 and self.hashed == len(self.lengths)

    def first_bad_chunk(self) -> str | None:
        """The id of the first chunk whose bytes in the temp file do not match it, if any: what to
        name when the file as a whole does not match its sha256."""
        for (chunk_id, length), offset in zip(self.entry.chunk_list(), self.offsets):
            data = os.pread(self.fd, length, offset)
            if len(data) != length or hashlib.sha256(data).hexdigest() != chunk_id:
                return chunk_id
        return None

    def close(self) -> None:
        for fd in (self.fd, self.copy_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.copy_fd = -1


class FileHasher:
    """Hashes assemblies in file order on a thread of its own as their chunks land.

    Readers wrap each read in ``reading()`` and report each chunk written with ``landed``;
    ``finish`` waits until every landed chunk is hashed. A read waits in ``reading()`` while more
    than ``window`` landed bytes await hashing, unless no other read is in flight (so a file
    whose next chunk is in a read not yet started never stalls the download)."""

    def __init__(self, window: int = WINDOW) -> None:
        self.window = window
        self._cond = threading.Condition()
        self._ready: deque[Assembly] = deque()
        self._ahead = 0
        """Bytes landed and not hashed yet."""
        self._reads = 0
        self._closing = False
        self._abandoned = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="file-hasher", daemon=True)
        self._thread.start()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read of chunks: held back while the hash lags too far behind the landed chunks."""
        with self._cond:
            while self._ahead > self.window and self._reads and self._error is None:
                self._cond.wait()
            self._reads += 1
        try:
            yield
        finally:
            with self._cond:
                self._reads -= 1
                self._cond.notify_all()

    def landed(self, assembly: Assembly, index: int) -> None:
        """Chunk ``index`` of ``assembly`` is written: hash it when its turn comes."""
        with self._cond:
            assembly.landed[index] = True
            assembly.remaining -= 1
            self._ahead += assembly.lengths[index]
            if index == assembly.hashed and not assembly.queued:
                assembly.queued = True
                self._ready.append(assembly)
                self._cond.notify_all()

    def finish(self) -> None:
        """Wait until everything landed is hashed (the thread then ends); raise what it met."""
        self._stop(drain=True)
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """End the thread without hashing what is left (after a failure: the files are discarded)."""
        self._stop(drain=False)

    def _stop(self, drain: bool) -> None:
        with self._cond:
            self._closing = True
            self._abandoned = not drain
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        buffer = memoryview(bytearray(READ_BACK))
        try:
            while (work := self._next()) is not None:
                assembly, start, end = work
                self._hash(assembly, start, end, buffer)
                with self._cond:
                    assembly.hashed = end
                    self._ahead -= assembly.offsets[end] - assembly.offsets[start]
                    if end < len(assembly.landed) and assembly.landed[end]:
                        self._ready.append(assembly)
                    else:
                        assembly.queued = False
                    self._cond.notify_all()
        except BaseException as e:  # handed to the caller by ``finish``
            with self._cond:
                self._error = e
                self._cond.notify_all()

    def _next(self) -> tuple[Assembly, int, int] | None:
        """The next run of landed chunks to hash (at least one, at most about ``READ_BACK`` bytes
        unless one chunk is larger), or None once closing with nothing left."""
        with self._cond:
            while not self._ready and not self._closing:
                self._cond.wait()
            if not self._ready or self._abandoned:
                return None
            assembly = self._ready.popleft()
            start = end = assembly.hashed
            limit = assembly.offsets[start] + READ_BACK
            while end < len(assembly.landed) and assembly.landed[end] \
                    and (end == start or assembly.offsets[end + 1] <= limit):
                end += 1
            return assembly, start, end

    @staticmethod
    def _hash(assembly: Assembly, start: int, end: int, buffer: memoryview) -> None:
        """Feed chunks ``[start, end)`` to the digest, read back from the temp file."""
        offset, stop = assembly.offsets[start], assembly.offsets[end]
        while offset < stop:
            view = buffer[: min(len(buffer), stop - offset)]
            got = os.preadv(assembly.fd, [view], offset)
            if got != len(view):
                raise IntegrityError(
                    f"{assembly.entry.path!r}: its temp file {assembly.temp} was truncated meanwhile")
            assembly.digest.update(view)
            offset += got


def write_all_at(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (``pwrite`` may write only part)."""
    view = data
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
