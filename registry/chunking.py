"""Cutting files into content-defined chunks (format 2), so an edit costs what it changes.

A file under ``SMALL_FILE_MAX`` bytes is one chunk whose id is the file's sha256. A larger file
is cut by FastCDC (``pyfastcdc``): cut points depend only on the bytes near them, so an
overwrite or an insertion changes the chunks around it and leaves the rest, which the store
already holds, untouched. Chunk ids are the sha256 of their bytes.

The chunk list is part of a file's manifest entry and so of the version digest: the same bytes
must always give the same list. The sizes below, the FastCDC normalisation level and its gear
table (seed 0) are therefore part of the store format; changing any of them makes re-logged
contents look new (never wrong), so they change only with a new format. ``pyfastcdc`` is pinned
to one minor version for the same reason.

Sizes were picked by ``benchmarks/chunk_sizes.py`` (1 GiB file, issue 16's target of at most
3 % re-uploaded for a 1 % overwrite and for a 1 KiB insertion). FastCDC's mean chunk is about
``AVG_CHUNK + MIN_CHUNK``, as its cut-point skipping starts looking at ``MIN_CHUNK``.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from collections import deque
from collections.abc import Callable, Container, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from pyfastcdc import FastCDC

from .errors import IntegrityError

SMALL_FILE_MAX = 1024 * 1024
"""Files smaller than this are stored whole, as one chunk named by the file's sha256."""
MIN_CHUNK = 64 * 1024
AVG_CHUNK = 256 * 1024
MAX_CHUNK = 1024 * 1024
NORMALIZATION: Final = 1
"""FastCDC's normalised chunking level (0-3): 1 keeps chunk sizes near the mean without
hurting dedup, as the FastCDC paper and ``fastcdc-rs`` recommend."""
CHUNK_PARAMS: Final = f"fastcdc-{MIN_CHUNK}-{AVG_CHUNK}-{MAX_CHUNK}"
"""Names these settings where chunk lists are remembered (``ChunkMemory``): others cut other lists."""
READ_BLOCK = 16 * 1024 * 1024
"""Bytes read per block (fewer for a smaller file, never under twice ``max``): large, so the
work per block (a thread hand-off, the carried-over tail) is negligible."""


@dataclass(frozen=True)
class ChunkSizes:
    """FastCDC's size bounds, ``min <= avg <= max``: no chunk is longer than ``max``, and only
    a file's last chunk is shorter than ``min``."""

    min: int
    avg: int
    max: int


SIZES = ChunkSizes(MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)


@dataclass(frozen=True)
class ChunkedFile:
    """A file's sha256, size and chunks (chunk sha256, length) in file order.

    A file under ``SMALL_FILE_MAX`` has one chunk, itself; ``manifest_chunks`` is then None,
    as its manifest entry lists no chunks (``FileEntry.chunk_list()`` gives them back).
    """

    sha256: str
    size: int
    chunks: tuple[tuple[str, int], ...]

    @property
    def manifest_chunks(self) -> tuple[tuple[str, int], ...] | None:
        return None if self.size < SMALL_FILE_MAX else self.chunks


def chunk_bytes(data: bytes | bytearray | memoryview, *, sizes: ChunkSizes = SIZES) -> ChunkedFile:
    """The chunks of bytes held in memory; equal to ``chunk_file`` of a file holding them.

    >>> chunk_bytes(b"abc").chunks == ((chunk_bytes(b"abc").sha256, 3),)
    True
    """
    view = memoryview(data).cast("B")
    whole = hashlib.sha256(view).hexdigest()
    if len(view) < SMALL_FILE_MAX:
        return ChunkedFile(whole, len(view), ((whole, len(view)),))
    chunks = tuple((_sha(c.data), c.length) for c in _chunker(sizes).cut_buf(view))
    return ChunkedFile(whole, len(view), chunks)


OnChunk = Callable[[str, memoryview], None]
"""Called with each chunk's id and its bytes (valid only during the call) as a file is cut."""


def chunk_file(path: Path, *, sizes: ChunkSizes = SIZES, on_chunk: OnChunk | None = None) -> ChunkedFile:
    """Read ``path`` once and return its sha256 and chunks.

    Blocks are read into memory (not mapped), so a file truncated meanwhile cannot crash the
    process, and both digests come from the very same bytes: the result is self-consistent even
    if the file changes while read. The whole-file sha256 runs in a second thread (hashlib
    releases the GIL), while this one cuts and hashes the chunks. ``on_chunk`` gets each chunk
    of a large file as it is cut (a writer packs the new ones in the same pass: one read, and
    each chunk hashed on the very bytes that are sent).
    """
    with open(path, "rb", buffering=0) as f:
        head = _read_up_to(f.read, SMALL_FILE_MAX)
        if len(head) < SMALL_FILE_MAX:
            return chunk_bytes(head, sizes=sizes)
        block = max(2 * sizes.max, min(READ_BLOCK, os.fstat(f.fileno()).st_size + 1))
        return _chunk_stream(head, f.readinto, block, sizes, on_chunk)


def iter_chunk_bytes(
    path: Path, chunks: tuple[tuple[str, int], ...], *, only: Container[str] | None = None,
) -> Iterator[tuple[str, memoryview]]:
    """(chunk id, bytes) of ``path``'s chunks in file order, reading the file once, for packing.

    With ``only``, other chunks are skipped without being read. Neighbouring chunks are read
    together into one buffer, reused: each chunk's bytes are valid until the next is asked for.
    Each chunk is checked against its id, so a file changed since it was chunked raises
    ``IntegrityError`` before a wrong byte reaches a pack.
    """
    buffer = bytearray()
    with open(path, "rb", buffering=0) as f:
        for start, run in _reads(chunks, only):
            size = sum(length for _, _, length in run)
            if len(buffer) < size:
                buffer = bytearray(max(size, min(READ_BLOCK, _total(chunks, only))))
            view = memoryview(buffer)[:size]
            f.seek(start)
            filled = _fill(f.readinto, view, 0)
            at = 0
            for index, chunk_id, length in run:
                data = view[at : at + length]
                if at + length > filled or _sha(data) != chunk_id:
                    raise IntegrityError(
                        f"{path} changed after it was chunked (chunk {index} no longer matches): "
                        "nothing was logged; add it again once nothing is writing to it"
                    )
                yield chunk_id, data
                at += length


Read = tuple[int, list[tuple[int, str, int]]]
"""Where a read starts in the file, and the (index, id, length) of the chunks it covers."""


def _reads(chunks: tuple[tuple[str, int], ...], only: Container[str] | None) -> Iterator[Read]:
    """The wanted chunks, grouped into reads of neighbours of at most ``READ_BLOCK`` bytes."""
    run: list[tuple[int, str, int]] = []
    start = end = offset = 0
    for index, (chunk_id, length) in enumerate(chunks):
        if only is None or chunk_id in only:
            if run and (offset != end or end - start + length > READ_BLOCK):
                yield start, run
                run = []
            if not run:
                start = end = offset
            run.append((index, chunk_id, length))
            end += length
        offset += length
    if run:
        yield start, run


def _total(chunks: tuple[tuple[str, int], ...], only: Container[str] | None) -> int:
    return sum(length for chunk_id, length in chunks if only is None or chunk_id in only)


@lru_cache(maxsize=8)
def _chunker(sizes: ChunkSizes) -> FastCDC:
    return FastCDC(sizes.avg, min_size=sizes.min, max_size=sizes.max, normalized_chunking=NORMALIZATION)


def _sha(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


Readinto = Callable[[memoryview], int | None]


def _read_up_to(read: Callable[[int], bytes | None], size: int) -> bytes:
    """The first ``size`` bytes (fewer at the end of the file), in one read when the file allows."""
    parts: list[bytes] = []
    while size and (part := read(size)):
        parts.append(part)
        size -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _fill(readinto: Readinto, view: memoryview, filled: int) -> int:
    """Read into ``view[filled:]`` until it is full or the file ends; return the length filled."""
    while filled < len(view) and (n := readinto(view[filled:])):
        filled += n
    return filled


@dataclass
class _Block:
    """A block read and cut, whose digests are being computed in other threads."""

    view: memoryview
    cuts: list[tuple[int, int]]
    """(offset, length) in ``view`` of each chunk that ends in this block, in order."""
    ids: list[Future[list[str]]]
    """The chunk ids of consecutive runs of ``cuts``."""
    hashed: Future[None]
    """The whole-file digest's update with this block's new bytes."""


def _chunk_stream(head: bytes, readinto: Readinto, block: int, sizes: ChunkSizes,
                  on_chunk: OnChunk | None = None) -> ChunkedFile:
    """Chunk a file block by block, ``head`` being its first bytes.

    This thread only reads and cuts (FastCDC is several times faster than sha256); the chunks
    are hashed by ``CHUNK_HASHERS`` threads and the whole file by one more, all at once
    (hashlib releases the GIL), so the two sha256 passes share the cores evenly. Two buffers are
    used in turn: one is filled and cut while the other's digests are computed.

    A chunk cut with fewer than ``max`` bytes after its start might end elsewhere once more bytes
    arrive, so it is carried into the next block; FastCDC never looks further than ``max`` bytes,
    so the cuts equal those of the whole file in memory.
    """
    buffers = [bytearray(block), bytearray(block)]
    whole = hashlib.sha256(head)
    chunks: list[tuple[str, int]] = []
    pending: deque[_Block] = deque()
    carry = head
    with ThreadPoolExecutor(max_workers=1) as file_hasher, \
            ThreadPoolExecutor(max_workers=CHUNK_HASHERS) as chunk_hasher:
        try:
            for turn in itertools.count():
                if len(pending) == 2:  # this turn's buffer is the one read two turns ago
                    _finish_block(pending.popleft(), chunks, on_chunk)
                view = memoryview(buffers[turn % 2])
                view[: len(carry)] = carry
                filled = _fill(readinto, view, len(carry))
                hashed = file_hasher.submit(whole.update, view[len(carry) : filled])
                at_end = filled < block
                cuts, carry = _cut_block(view[:filled], at_end, sizes)
                ids = [chunk_hasher.submit(_hash_run, view, run) for run in _runs(cuts, CHUNK_HASHERS)]
                pending.append(_Block(view, cuts, ids, hashed))
                if at_end:
                    break
            while pending:
                _finish_block(pending.popleft(), chunks, on_chunk)
        finally:  # no thread may still read a buffer once this returns or raises
            for left in pending:
                left.hashed.cancel()
                for future in left.ids:
                    future.cancel()
    return ChunkedFile(whole.hexdigest(), sum(length for _, length in chunks), tuple(chunks))


CHUNK_HASHERS = 2
"""Threads hashing chunks beside the one hashing the whole file: with both, the cores of a
small machine stay busy while this thread reads and cuts."""


def _cut_block(view: memoryview, at_end: bool, sizes: ChunkSizes) -> tuple[list[tuple[int, int]], bytes]:
    """(offset, length) of the block's final chunks, and the bytes after them, to carry over."""
    cuts: list[tuple[int, int]] = []
    for chunk in _chunker(sizes).cut_buf(view):
        if not at_end and len(view) - chunk.offset < sizes.max:
            return cuts, bytes(view[chunk.offset :])
        cuts.append((chunk.offset, chunk.length))
    return cuts, b""


def _runs(cuts: list[tuple[int, int]], count: int) -> list[list[tuple[int, int]]]:
    """``cuts`` split into at most ``count`` consecutive runs of about equal bytes."""
    total = sum(length for _, length in cuts)
    runs: list[list[tuple[int, int]]] = [[]]
    done = 0
    for cut in cuts:
        if done >= total * len(runs) / count and runs[-1]:
            runs.append([])
        runs[-1].append(cut)
        done += cut[1]
    return runs


def _hash_run(view: memoryview, run: list[tuple[int, int]]) -> list[str]:
    return [_sha(view[offset : offset + length]) for offset, length in run]


def _finish_block(done: _Block, chunks: list[tuple[str, int]], on_chunk: OnChunk | None) -> None:
    """Append the block's chunks (and hand them to ``on_chunk``) once their digests are known."""
    ids = [chunk_id for future in done.ids for chunk_id in future.result()]
    for chunk_id, (offset, length) in zip(ids, done.cuts):
        chunks.append((chunk_id, length))
        if on_chunk is not None:
            on_chunk(chunk_id, done.view[offset : offset + length])
    done.hashed.result()
