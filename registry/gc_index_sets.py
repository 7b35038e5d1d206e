"""gc's last step on a remote store: gather pack indexes into index sets (``index_sets``).

Once ``index_sets.SET_MIN`` of the store's packs are in no set, their indexes are written into
new sets of up to ``SET_TARGET`` bytes. A set of which fewer than half the packs remain is
replaced: its survivors join the packs in no set, and it is deleted only after the sets written
in the same pass are stored. Sets only save requests (readers trust the per-pack ``index/``
listing for which packs exist), so none of this needs the in-flight protocol.
"""
from __future__ import annotations

from . import keys
from .gc_report import GcReport
from .index_sets import SET_MIN, SET_TARGET, encode_set, listed_sets, read_sets
from .store import Store


def compact_indexes(store: Store, report: GcReport) -> None:
    """Write sets for the packs in none, replacing mostly-dead sets (dry run: only counts)."""
    if store.cache.is_store:  # a local disk has no request cost: nothing to save
        return
    indexes = store.pack_indexes
    listed = indexes.listed()  # after this pass's deletions and repacks
    held: set[str] = set()
    stale: list[str] = []
    for set_id, packs in read_sets(store.backend, indexes.root / "sets", listed_sets(store.backend)):
        alive = packs.keys() & listed
        if 2 * len(alive) < len(packs):
            stale.append(set_id)
        else:
            held |= alive
    loose = sorted(listed - held)
    if len(loose) >= SET_MIN:
        for batch in _batches(store, loose):
            set_id, body = encode_set(batch)
            if not report.dry_run:
                store.backend.write(keys.index_set(set_id), body, sha256=set_id)
            report.index_sets_written.append(set_id)
    for set_id in stale:  # after the new sets: a reader always has one or the other
        if not report.dry_run:
            store.backend.delete(keys.index_set(set_id))
        report.index_sets_deleted.append(set_id)


def _batches(store: Store, pack_ids: list[str]):
    """The indexes of ``pack_ids`` in groups of up to ``SET_TARGET`` bytes (packs gone meanwhile left out)."""
    batch: dict[str, bytes] = {}
    size = 0
    for pack_id in pack_ids:
        index = store.pack_indexes.index_bytes(pack_id)
        if index is None:
            continue
        if batch and size + len(index) > SET_TARGET:
            yield batch
            batch, size = {}, 0
        batch[pack_id] = index
        size += len(index)
    if batch:
        yield batch
