"""Index sets (format 2): many packs' indexes in one object, so a cold machine fetches a few.

Every pack has its own index object (``index/<2 hex>/<pack>.idx``), and a machine that has never
seen the store fetches one per pack before a writer can tell which chunks are new: thousands
of small GETs on a store of thousands of packs. ``gc`` gathers the indexes of packs that no set
holds yet into sets of up to ``SET_TARGET`` bytes; a machine asked to load many indexes reads
the sets first, then fetches one by one only the indexes no set holds.

A set only saves requests; it never decides anything. The per-pack index stays, and stays the
record of which packs exist: a reader takes from a set only the packs it was asked for (ids it
listed under ``index/``, or that a version names), so a set that still names packs deleted
since is harmless, and a set that is missing or damaged only costs the GETs it would have
saved. So sets need no protocol with writers, readers or other collectors: gc writes new sets
before it deletes those they replace, and replaces a set once fewer than half its packs remain.

Layout (integers little-endian, unsigned); the object is named by the sha256 of its bytes::

    set    = magic "RGIDXS01" (8 bytes) | N (u32) | N records, sorted by pack id, no duplicates
    record = pack id (32 raw bytes) | L (u32) | L bytes: that pack's index, exactly its .idx object
"""
from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backends import Backend

from . import keys
from .errors import IntegrityError
from .packs import parse_index
from .tempnames import keep_copy

MAGIC = b"RGIDXS01"
HEADER = struct.Struct("<8sI")
RECORD = struct.Struct("<32sI")
SET_TARGET = 4 * 1024 * 1024
"""A set is closed once it holds this many bytes of indexes (one GET; ~25,000 small files' entries)."""
SET_MIN = 256
"""gc writes a set once this many of the store's packs are in none (fewer cost little one by one)."""
SET_WORTH = 64
"""Loading at least this many packs' indexes reads the sets first (a listing and a few GETs)."""

PackEntries = dict[str, tuple[int, int]]
logger = logging.getLogger("registry")


def encode_set(indexes: Mapping[str, bytes]) -> tuple[str, bytes]:
    """(set id, bytes) of a set holding ``indexes`` (pack id -> its index object's bytes)."""
    parts = [HEADER.pack(MAGIC, len(indexes))]
    for pack_id, index in sorted(indexes.items()):
        parts += [RECORD.pack(bytes.fromhex(pack_id), len(index)), index]
    body = b"".join(parts)
    return hashlib.sha256(body).hexdigest(), body


def parse_set(data: bytes, key: str) -> dict[str, PackEntries]:
    """pack id -> its index's entries; anything but a well-formed set named by its sha256 is
    ``IntegrityError`` naming ``key``."""
    if hashlib.sha256(data).hexdigest() != keys.set_id_of_key(key):
        raise _corrupt(key, "its bytes do not match its name")
    if len(data) < HEADER.size or HEADER.unpack_from(data)[0] != MAGIC:
        raise _corrupt(key, f"it does not start with {MAGIC!r}")
    count = HEADER.unpack_from(data)[1]
    packs: dict[str, PackEntries] = {}
    at, previous = HEADER.size, b""
    for _ in range(count):
        if at + RECORD.size > len(data):
            raise _corrupt(key, "it ends inside a record")
        raw, length = RECORD.unpack_from(data, at)
        at += RECORD.size
        if raw <= previous or at + length > len(data):
            raise _corrupt(key, "its pack ids are not strictly sorted, or a record runs past its end")
        previous = raw
        packs[raw.hex()] = parse_index(data[at : at + length], f"{key} (pack {raw.hex()[:12]}...)")
        at += length
    if at != len(data):
        raise _corrupt(key, "bytes follow its last record")
    return packs


def listed_sets(backend: Backend) -> list[str]:
    return sorted(keys.set_id_of_key(info.key) for info in backend.list(keys.index_sets_prefix()))


def read_sets(backend: Backend, root: Path, set_ids: list[str], workers: int = 8
              ) -> Iterator[tuple[str, dict[str, PackEntries]]]:
    """(set id, its packs' entries) for each of ``set_ids`` that is readable: from ``root`` (this
    machine's copy), else the store (then kept in ``root``). A set that vanished or is damaged is
    skipped with a warning: its packs' own indexes are read instead."""
    def one(set_id: str) -> dict[str, PackEntries] | None:
        key, local = keys.index_set(set_id), root / f"{set_id}.set"
        try:
            return parse_set(local.read_bytes(), key)
        except (OSError, IntegrityError):
            pass  # not here yet, or damaged on disk: fetch it again
        try:
            data = backend.read(key)
            packs = parse_set(data, key)
        except FileNotFoundError:
            return None  # replaced by a collector since the listing
        except IntegrityError as e:
            logger.warning("registry: %s; reading its packs' own indexes instead", e)
            return None
        keep_copy(local, data)
        return packs

    if not set_ids:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(set_ids)))) as pool:
        for set_id, packs in zip(set_ids, pool.map(one, set_ids)):
            if packs is not None:
                yield set_id, packs


def _corrupt(key: str, reason: str) -> IntegrityError:
    return IntegrityError(f"{key}: corrupt index set ({reason}); gc writes it again once it is deleted")
