"""Rewriting packs that are mostly dead (format 2): their live chunks move into new packs.

A pack is immutable, so one that lost most of its chunks to deleted versions would otherwise
be kept whole for as long as one of its chunks is used. ``gc`` rewrites such a pack: its live
chunks are read by ranged GETs (each checked against its id), written into new packs by the
writers' own ``PackUploader`` (the live remainders of several packs share one new pack), and
only once every new pack *and its index* is stored are the old pack and then its index deleted.

Why that order is safe:
- **Readers.** A chunk is always in some pack whose index is listed: first in the old pack,
  then in both, then in the new one. A reader that loaded the old index and finds the pack
  gone refreshes the indexes (``PackIndexes.refresh``) and finds the new one.
- **A collector killed midway** leaves both copies; the next pass rewrites the old pack again
  and deletes it (the same candidates give the same new pack, written again; otherwise a
  chunk may stay in two packs: space, never data, is what a crash can cost).
- **Writers.** A pack named by an in-flight marker is never rewritten; the collector names
  its new packs in its own marker before uploading them, as a writer does, so a concurrent
  collector leaves them alone. A writer that found a chunk in the old pack before its marker
  named it is the case gc already has for deleted packs: after its commit it waits for running
  collectors, sees the pack gone, and finds the chunk in the new pack (or sends it again).
- **Two collectors at once** may both rewrite a pack; each copies every live chunk it sees,
  never counting on a copy in another pack (the other collector might be deleting that one).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from . import keys
from .errors import IntegrityError
from .gc_report import GcReport
from .pack_reader import read_pack_chunks
from .pack_writer import PackUploader
from .packs import ENTRY
from .protection import Protection
from .store import Store

REWRITE_BELOW = 0.5
"""A pack is rewritten when less than this share of its chunk bytes is live. Below one half,
every byte copied frees at least one byte, so the I/O a repack costs is bounded by the space it
returns (summed over time, by the bytes ever written), and the packs kept whole are at least
half live: after a gc, old packs hold at most about twice their live bytes. A new pack is
wholly live, so a chunk is copied again only after half of its new pack has died too."""

logger = logging.getLogger("registry")


@dataclass(frozen=True)
class Rewrite:
    """A pack to rewrite: its live chunks (id -> (offset, length)) and its bytes with its index."""

    pack_id: str
    live: dict[str, tuple[int, int]]
    stored_bytes: int

    @property
    def live_bytes(self) -> int:
        return sum(length for _, length in self.live.values())


def mostly_dead(entries: Mapping[str, tuple[int, int]], live: Mapping[str, tuple[int, int]]) -> bool:
    """Whether live chunks hold less than ``REWRITE_BELOW`` of a pack's chunk bytes."""
    total = sum(length for _, length in entries.values())
    return sum(length for _, length in live.values()) < REWRITE_BELOW * total


def repack(store: Store, rewrites: list[Rewrite], report: GcReport) -> None:
    """Rewrite ``rewrites`` (see the module docstring); a dry run only counts them."""
    if report.dry_run or not rewrites:  # (no marker written for nothing)
        for rewrite in rewrites:
            _count(report, rewrite)
        return
    done: list[Rewrite] = []
    with Protection(store.blobs) as guard, \
            PackUploader(store.backend, announce=guard.cover) as uploader:
        for rewrite in rewrites:
            chunks = _read_live(store, rewrite, report)
            if chunks is not None:
                for chunk_id, data in chunks:
                    uploader.add(chunk_id, data)
                done.append(rewrite)
        uploader.finish()  # every new pack and its index are stored: only now may the old ones go
        report.new_packs.extend(uploader.packs)
        for rewrite in done:
            store.backend.delete(keys.pack(rewrite.pack_id))
            store.backend.delete(keys.pack_index(rewrite.pack_id))
            store.pack_indexes.forget(rewrite.pack_id)
            _count(report, rewrite)
    if done:
        logger.info("registry: rewrote %d mostly-dead pack(s) into %d", len(done), len(uploader.packs))


def _read_live(store: Store, rewrite: Rewrite, report: GcReport) -> list[tuple[str, memoryview]] | None:
    """The pack's live chunks, all verified before any is used; None (the pack left alone) if
    another collector took it meanwhile, or it is damaged (a warning names it)."""
    try:
        return list(read_pack_chunks(store.backend, rewrite.pack_id, rewrite.live))
    except FileNotFoundError:
        return None
    except IntegrityError as e:
        logger.warning("registry: gc left a damaged pack whole: %s", e)
        report.referenced += 1
        return None


def _count(report: GcReport, rewrite: Rewrite) -> None:
    report.repacked.append(rewrite.pack_id)
    report.deleted += [keys.pack(rewrite.pack_id), keys.pack_index(rewrite.pack_id)]
    report.rewritten_bytes += rewrite.live_bytes
    # the live chunks' bytes and their entries (in the new pack's footer and in its index) come back
    report.freed_bytes += rewrite.stored_bytes - rewrite.live_bytes - 2 * ENTRY.size * len(rewrite.live)
