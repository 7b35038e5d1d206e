"""Packs (format 2): many chunks in one immutable object, with their index at its end.

A pack turns thousands of small writes into one, and lets a reader fetch the chunks it needs
by a few ranged reads (neighbours coalesced). It is named by the sha256 of its bytes.

Binary layout (all integers little-endian, unsigned)::

    pack    = body footer trailer
    body    = the chunk bytes back to back, in the order they were added, no padding
    footer  = N entries of 44 bytes, sorted by chunk id (strictly: no duplicates)
    entry   = chunk id (32 bytes: the raw sha256 of the chunk's bytes)
              offset   (u64: where the chunk starts, from the start of the pack)
              length   (u32: its length; 0 for the empty chunk)
    trailer = 52 bytes:
              footer sha256 (32 bytes: sha256 of the footer's bytes)
              body length   (u64: the footer's offset in the pack)
              N             (u32: the entry count)
              magic         (8 bytes: b"RGPACK02")

The entries' ranges, taken in offset order, tile the body exactly: the first starts at 0, each
starts where the previous ended, the last ends at the body length. So a pack of size S has its
index (footer and trailer, ``44 * N + 52`` bytes) at ``S - 44 * N - 52``. The pack index object
(``keys.pack_index``) holds exactly those bytes, so one function (``parse_index``) reads both;
the footer's own sha256 guards an index file read without its pack, as when building the dedup
index (a flipped bit there could otherwise claim a chunk that is not in the pack).

A reader that wants only the index asks for a suffix of the pack (say 64 KiB), reads the
trailer with ``index_size`` and, if the index is longer than what it got, asks for the rest.
"""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass

from .errors import IntegrityError

PACK_TARGET = 16 * 1024 * 1024
"""A pack is closed once its bodies reach this: it fits one PUT request."""
HEADROOM = 2 * 1024 * 1024
"""Room allocated beyond ``target`` for the chunk that fills a pack."""
MAGIC = b"RGPACK02"
ENTRY = struct.Struct("<32sQI")
TRAILER = struct.Struct("<32sQI8s")
TRAILER_SIZE = TRAILER.size
MAX_CHUNK_LENGTH = 2**32 - 1
READ_GAP = 1024 * 1024
"""Chunks this close together are fetched by one ranged read, reading the gap through."""
MAX_SPAN = 16 * 1024 * 1024
"""No ranged read asks for more than this, unless one chunk is bigger."""

Entries = Mapping[str, tuple[int, int]]
"""chunk id (sha256 hex) -> (offset, length) in the pack."""


@dataclass(frozen=True)
class BuiltPack:
    """A finished pack, ready to be written under ``keys.pack(pack_id)``, and its index under
    ``keys.pack_index(pack_id)``."""

    pack_id: str
    body: memoryview
    """The whole pack: bodies, footer and trailer (a read-only view of the builder's buffer,
    which no one else holds once built)."""
    index: bytes
    """The footer and trailer, the pack index object's bytes."""
    entries: Entries


class PackBuilder:
    """Collects chunk bodies for one pack, holding about one copy of them.

    >>> builder = PackBuilder()
    >>> builder.add(hashlib.sha256(b"abc").hexdigest(), b"abc")
    >>> built = builder.build()
    >>> index_of_pack(built.body, "example") == built.entries
    True
    """

    def __init__(self, target: int = PACK_TARGET) -> None:
        self.target = target
        self._body = bytearray()  # allocated at the first chunk; grows in place
        self._size = 0
        self._entries: dict[str, tuple[int, int]] = {}

    def add(self, chunk_id: str, data: bytes | memoryview) -> None:
        """Append a chunk, unless this pack has it already. The caller vouches that ``chunk_id``
        is the sha256 of ``data`` (readers check it)."""
        if chunk_id in self._entries:
            return
        if len(chunk_id) != 64 or bytes.fromhex(chunk_id).hex() != chunk_id:  # fail now, not at build
            raise ValueError(f"a chunk id is 64 lowercase hex digits, not {chunk_id!r}")
        if len(data) > MAX_CHUNK_LENGTH:
            raise ValueError(f"a chunk of {len(data)} bytes is longer than a pack entry can say")
        start, end = self._size, self._size + len(data)
        if not self._body:  # one allocation per pack: a growing buffer would copy it again and again
            self._body = bytearray(max(end, self.target + HEADROOM))
        elif end > len(self._body):  # a chunk bigger than the headroom
            self._body.extend(bytes(end - len(self._body)))
        self._body[start:end] = data
        self._entries[chunk_id] = (start, len(data))
        self._size = end

    @property
    def size(self) -> int:
        """Bytes of chunk bodies so far."""
        return self._size

    @property
    def count(self) -> int:
        return len(self._entries)

    @property
    def full(self) -> bool:
        return self.size >= self.target

    def build(self) -> BuiltPack:
        """The finished pack; the builder is left empty, ready for the next one.

        The index is written after the bodies in the same buffer (the headroom has room for
        it), and the pack is a read-only view of that buffer: no second copy of the pack."""
        index = encode_index(self._entries, self._size)
        end = self._size + len(index)
        if end > len(self._body):
            self._body.extend(bytes(end - len(self._body)))
        self._body[self._size : end] = index
        body, entries = memoryview(self._body)[:end].toreadonly(), self._entries
        self._body, self._size, self._entries = bytearray(), 0, {}
        return BuiltPack(hashlib.sha256(body).hexdigest(), body, index, entries)


def encode_index(entries: Entries, body_length: int) -> bytes:
    """The footer and trailer for ``entries`` (which must tile ``body_length`` bytes)."""
    footer = b"".join(ENTRY.pack(bytes.fromhex(cid), *where) for cid, where in sorted(entries.items()))
    return footer + TRAILER.pack(hashlib.sha256(footer).digest(), body_length, len(entries), MAGIC)


def index_size(tail: bytes, what: str) -> int:
    """How many bytes at the end of a pack hold its index, from (at least) its last
    ``TRAILER_SIZE`` bytes."""
    return _read_trailer(tail, what)[2]


def parse_index(data: bytes, what: str) -> dict[str, tuple[int, int]]:
    """chunk id -> (offset, length) from a pack index (footer and trailer, nothing else).

    Strict: anything but a well-formed index raises ``IntegrityError`` naming ``what``.
    """
    footer_sha, body_length, size = _read_trailer(data, what)
    if len(data) != size:
        raise _corrupt(what, f"{len(data)} bytes where its trailer says {size}")
    footer = memoryview(data)[: size - TRAILER_SIZE]
    if hashlib.sha256(footer).digest() != footer_sha:
        raise _corrupt(what, "its footer does not match the footer sha256")
    entries: dict[str, tuple[int, int]] = {}
    previous = b""
    for raw, offset, length in ENTRY.iter_unpack(footer):
        if raw <= previous:
            raise _corrupt(what, "its chunk ids are not strictly sorted")
        previous = raw
        entries[raw.hex()] = (offset, length)
    _check_tiling(entries.values(), body_length, what)
    return entries


def index_of_pack(pack_bytes: bytes, what: str) -> dict[str, tuple[int, int]]:
    """The index of a whole pack, read from its end; the body must be exactly as long as it says."""
    size = index_size(pack_bytes, what)
    if size > len(pack_bytes):
        raise _corrupt(what, f"its index ({size} bytes) is longer than the pack ({len(pack_bytes)} bytes)")
    entries = parse_index(pack_bytes[-size:], what)
    if sum(length for _, length in entries.values()) != len(pack_bytes) - size:
        raise _corrupt(what, "its body is not as long as its trailer says")
    return entries


def _read_trailer(tail: bytes, what: str) -> tuple[bytes, int, int]:
    """(footer sha256, body length, index size) from the last ``TRAILER_SIZE`` bytes of ``tail``."""
    if len(tail) < TRAILER_SIZE:
        raise _corrupt(what, f"{len(tail)} bytes, shorter than a trailer ({TRAILER_SIZE})")
    footer_sha, body_length, count, magic = TRAILER.unpack_from(tail, len(tail) - TRAILER_SIZE)
    if magic != MAGIC:
        raise _corrupt(what, f"it ends with {magic!r}, not {MAGIC!r}")
    return footer_sha, body_length, ENTRY.size * count + TRAILER_SIZE


def _check_tiling(ranges: Iterable[tuple[int, int]], body_length: int, what: str) -> None:
    end = 0
    for offset, length in sorted(ranges):
        if offset != end:
            raise _corrupt(what, f"a chunk starts at {offset}, where one ends at {end} (overlap or gap)")
        end = offset + length
    if end != body_length:
        raise _corrupt(what, f"its chunks end at {end} but its body is {body_length} bytes")


def _corrupt(what: str, reason: str) -> IntegrityError:
    return IntegrityError(
        f"{what}: corrupt pack index ({reason}); the store copy is damaged: "
        "restore it, or delete the pack and re-log the versions that use it"
    )


@dataclass(frozen=True)
class Span:
    """One ranged read ``[start, end)`` of a pack, and the chunks (id, offset, length) it holds."""

    start: int
    end: int
    items: tuple[tuple[str, int, int], ...]


def plan_reads(
    wanted: Iterable[tuple[str, int, int]], gap: int = READ_GAP, max_span: int = MAX_SPAN,
) -> list[Span]:
    """Group the chunks wanted from ONE pack into ranged reads, in offset order.

    A chunk joins the current read when the bytes between them are at most ``gap`` (fetching a
    little more beats another request) and the read stays within ``max_span`` bytes (so reads
    run in parallel and a retry repeats little); a chunk bigger than that is a read of its own.
    A chunk wanted twice is read once.

    >>> [(s.start, s.end) for s in plan_reads([("a" * 64, 0, 10), ("b" * 64, 20, 5)], gap=10)]
    [(0, 25)]
    """
    spans: list[Span] = []
    items: list[tuple[str, int, int]] = []
    start = end = 0
    for item in sorted(set(wanted), key=lambda it: (it[1], it[2], it[0])):
        _, offset, length = item
        if items and offset - end <= gap and max(end, offset + length) - start <= max_span:
            items.append(item)
            end = max(end, offset + length)
            continue
        if items:
            spans.append(Span(start, end, tuple(items)))
        items, start, end = [item], offset, offset + length
    if items:
        spans.append(Span(start, end, tuple(items)))
    return spans


def split_span(data: bytes | memoryview, span: Span, what: str,
               describe: Callable[[str], str] | None = None,
               checked_later: Container[str] = ()) -> Iterator[tuple[str, memoryview]]:
    """Each chunk of a fetched span, checked against its id before it is yielded; ``describe``
    names what a chunk belongs to (a file) in the error. Chunks in ``checked_later`` are yielded
    unchecked: the caller hashes every byte of them again anyway (a file of several chunks is
    checked whole before it lands, and names a bad chunk then), so a second sha256 pass is saved."""
    def named(chunk_id: str) -> str:
        return f" ({describe(chunk_id)})" if describe is not None else ""

    if len(data) != span.end - span.start:
        raise IntegrityError(
            f"{what}{named(span.items[0][0]) if span.items else ''}: a ranged read of bytes "
            f"{span.start}-{span.end} returned {len(data)} bytes, not {span.end - span.start}: "
            "the pack is truncated or was replaced; "
            "re-log the versions that use it"
        )
    view = memoryview(data)
    for chunk_id, offset, length in span.items:
        body = view[offset - span.start : offset - span.start + length]
        if chunk_id not in checked_later and hashlib.sha256(body).hexdigest() != chunk_id:
            raise corrupt_chunk(chunk_id, what, named(chunk_id))
        yield chunk_id, body


def corrupt_chunk(chunk_id: str, what: str, owner: str = "") -> IntegrityError:
    """The error for a chunk of pack ``what`` whose bytes do not match its id (``owner``: " (file ...)")."""
    return IntegrityError(
        f"chunk {chunk_id}{owner} in {what} does not match its sha256: the store copy is "
        "corrupt; re-log the versions that use it"
    )
