"""What a store holds, read the same way whatever its layout (docs/FORMAT.md): a file's bytes
as a loose blob (format 1, and every local-directory store) or as chunks inside packs (format 2
on S3, each pack with its index). Tests that count what was stored, deleted or sent ask here
rather than list ``blobs/``, so they prove the same thing on both layouts."""
from __future__ import annotations

from backends import Backend, open_backend
from registry import keys
from registry.filelists import page_reader, version_entries
from registry.manifest_pages import page_digests
from registry.packs import parse_index
from registry.records import VersionRecord
from registry.store import Store

CONTENT_PREFIXES = (keys.blob_prefix(), keys.packs_prefix(), keys.pack_index_prefix())


def _backend(where: str | Backend) -> Backend:
    return open_backend(where) if isinstance(where, str) else where


def content_keys(where: str | Backend) -> set[str]:
    """Every loose blob, pack and pack index in the store."""
    backend = _backend(where)
    return {info.key for prefix in CONTENT_PREFIXES for info in backend.list(prefix)}


def gc_units(where: str | Backend) -> set[str]:
    """What gc decides about one by one: loose blobs and packs (a pack's index goes with it)."""
    backend = _backend(where)
    return {info.key for prefix in CONTENT_PREFIXES[:2] for info in backend.list(prefix)}


def pack_contents(where: str | Backend) -> dict[str, frozenset[str]]:
    """Every pack's id -> the chunk ids its index lists."""
    backend = _backend(where)
    return {keys.pack_id_of_index_key(info.key): frozenset(parse_index(backend.read(info.key), info.key))
            for info in backend.list(keys.pack_index_prefix())}


def holdings(where: str | Backend) -> dict[str, set[str]]:
    """Every blob or chunk id the store holds -> the keys of the objects holding it (its loose
    blob's, or the packs')."""
    backend = _backend(where)
    held: dict[str, set[str]] = {}
    for info in backend.list(keys.blob_prefix()):
        held.setdefault(keys.sha_of_blob_key(info.key), set()).add(info.key)
    for pack_id, chunks in pack_contents(backend).items():
        for chunk in chunks:
            held.setdefault(chunk, set()).add(keys.pack(pack_id))
    return held


def with_indexes(objects: set[str]) -> set[str]:
    """``objects`` and, for each pack among them, its index (what gc deletes along with it)."""
    packs = {key.rsplit("/", 1)[-1].removesuffix(".pack") for key in objects if key.startswith(keys.packs_prefix())}
    return objects | {keys.pack_index(p) for p in packs}


def objects_of(store: Store, record: VersionRecord) -> set[str]:
    """The keys of the objects a version needs: its file list or manifest pages, and the loose
    blob or pack holding each of its files' chunks (with the pack's index)."""
    needed = set(page_digests(page_reader(store, record), record.digest)) if record.paged else {record.digest}
    held = holdings(store.backend)
    objects = {keys.blob(sha) for sha in needed}
    for entry in version_entries(store, record):
        if entry.ref is None:
            for chunk, _ in entry.chunk_list():
                objects |= held[chunk]
    return with_indexes(objects)
