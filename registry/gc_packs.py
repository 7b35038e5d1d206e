"""Reclaiming packs (format 2): a pack goes once none of its chunks is referenced.

A pack is deleted (the pack, then its index) only when no live version uses any chunk in it,
it is older than the grace period, and no running writer's in-flight marker names it (a
writer names each pack before uploading it, and the packs it found chunks in). As for blobs,
the packs are listed *before* the markers are read: a pack in the listing was named in its
writer's marker before the collector looked at the markers. A pack whose index is missing
holds chunks no reader can find, so it goes once it is older than the grace period (a writer
killed between the two uploads). A pack that is mostly dead is rewritten (``gc_repack``); one
that is more live than that is kept whole. An index whose pack is gone (a collector killed
between deleting the two) goes too, live chunks or not: it names bytes nobody can read, and
would cost each cold reader a failed read. Writers upload a pack before its index, so an index
listed without its pack is checked by a HEAD: a missing pack is one that was deleted.
"""
from __future__ import annotations

from dataclasses import dataclass

from backends import ObjectInfo

from . import keys
from .gc_repack import Rewrite, mostly_dead, repack
from .gc_report import GcReport
from .store import Store


@dataclass
class PackListing:
    """The store's packs and pack indexes by pack id, as listed when a collection started."""

    packs: dict[str, ObjectInfo]
    indexes: dict[str, ObjectInfo]


def list_packs(store: Store) -> PackListing:
    listed = store.backend.list
    return PackListing(
        packs={_pack_id(info.key): info for info in listed(keys.packs_prefix())},
        indexes={keys.pack_id_of_index_key(info.key): info for info in listed(keys.pack_index_prefix())},
    )


def collect_packs(store: Store, listing: PackListing, used: set[str], protected: set[str], started: float,
                  grace_seconds: float, report: GcReport) -> None:
    packs, indexes = listing.packs, listing.indexes
    # a pack's index may have been written after the listing (its writer committed since): read it anyway
    store.pack_indexes.load(set(packs) | set(indexes))
    rewrites: list[Rewrite] = []
    for pack_id in sorted(set(packs) | set(indexes)):
        info = packs.get(pack_id) or indexes[pack_id]
        chunks = store.pack_indexes.entries_of(pack_id)
        live = {chunk: where for chunk, where in chunks.items() if chunk in used}
        age, in_flight = started - info.modified, pack_id in protected
        settled = age >= grace_seconds and not in_flight
        if settled and pack_id not in packs and not store.backend.exists(keys.pack(pack_id)):
            _delete(store, pack_id, listing, report)  # an index outliving its pack (a collector killed)
        elif live and settled and pack_id in packs and pack_id in indexes and mostly_dead(chunks, live):
            rewrites.append(Rewrite(pack_id, live, packs[pack_id].size + indexes[pack_id].size))
        elif not report.keeps(live=bool(live), age=age, grace_seconds=grace_seconds, in_flight=in_flight):
            _delete(store, pack_id, listing, report)
    repack(store, rewrites, report)


def _delete(store: Store, pack_id: str, listing: PackListing, report: GcReport) -> None:
    """The pack, then its index (whichever of them were listed)."""
    objects = ((keys.pack(pack_id), listing.packs.get(pack_id)),
               (keys.pack_index(pack_id), listing.indexes.get(pack_id)))
    for key, item in objects:
        if item is None:
            continue
        if not report.dry_run:
            store.backend.delete(key)
        report.deleted.append(key)
        report.freed_bytes += item.size
    if not report.dry_run:
        store.pack_indexes.forget(pack_id)


def _pack_id(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".pack")
