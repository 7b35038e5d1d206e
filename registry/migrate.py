"""``registry migrate``: move a store's small format-1 blobs into packs (format 2).

Version records and file lists are immutable (their hashes are digests that runs and aliases
name), so a format-1 version stays a format-1 version: what migration changes is where its
bytes live. Every small blob (under ``chunking.SMALL_FILE_MAX``) that a live version uses is
read (verified), packed, and its loose copy deleted once the pack and its index are stored;
a format-2 reader then fetches such a version's files by a few coalesced ranged GETs instead
of one request per file. Large blobs stay as they are: they already cost one request per
many MiB.

Idempotent and resumable: a blob found in a pack is never packed again, and a loose copy is
deleted only after the pack holding it is complete, so a migration killed at any point loses
nothing and the next run carries on. Dry run by default.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import keys
from .chunking import SMALL_FILE_MAX
from .errors import NotFoundError
from .filelists import read_file_list
from .lifecycle import deleted_numbers
from .pack_writer import PackUploader
from .store import Store
from .versions import read_version, version_numbers

logger = logging.getLogger("registry")
READ_BATCH = 256
"""Blobs read (16 at a time) before they go into the pack: bounds memory to a few MiB."""


@dataclass
class MigrateReport:
    dry_run: bool = True
    versions: int = 0
    """Live format-1 versions whose files were considered."""
    to_pack: int = 0
    bytes_to_pack: int = 0
    already_packed: int = 0
    packs: list[str] = field(default_factory=list)
    loose_deleted: int = 0
    note: str = ""


def migrate(store: Store, dry_run: bool = True) -> MigrateReport:
    """Pack the small blobs of live format-1 versions (see the module docstring)."""
    report = MigrateReport(dry_run=dry_run)
    if store.cache.is_store:
        report.note = ("a local-directory store keeps files whole (placed from it by reflink or hardlink): "
                       "nothing to do")
        return report
    sizes = _small_blobs_of_live_versions(store, report)
    located = store.pack_indexes.locate(sizes)
    loose_and_packed = {sha for sha in located if store.backend.exists(keys.blob(sha))}
    todo = sorted(set(sizes) - located.keys())
    report.already_packed = len(located)
    report.to_pack = len(todo)
    report.bytes_to_pack = sum(sizes[sha] for sha in todo)
    if dry_run:
        return report
    store.check_writable()
    with PackUploader(store.backend) as uploader:
        for batch in _batches(todo, READ_BATCH):
            with ThreadPoolExecutor(max_workers=min(16, len(batch))) as pool:
                for sha, data in zip(batch, pool.map(lambda s: store.blobs.read(s, what="migrate"), batch)):
                    uploader.add(sha, data)
    report.packs = uploader.packs
    for sha in [*loose_and_packed, *uploader.locations]:  # every pack is complete now
        store.backend.delete(keys.blob(sha))
        report.loose_deleted += 1
    logger.info("registry: migrated %d blob(s) into %d pack(s)", len(uploader.locations), len(uploader.packs))
    return report


def _small_blobs_of_live_versions(store: Store, report: MigrateReport) -> dict[str, int]:
    """sha256 -> size of every small stored file of a live format-1 version."""
    backend = store.backend
    sizes: dict[str, int] = {}
    for project in backend.list_children(keys.projects_prefix()):
        for name in backend.list_children(keys.artifacts_prefix(project)):
            gone = deleted_numbers(backend, project, name)
            for number in version_numbers(backend, project, name):
                if number in gone:
                    continue
                record = read_version(backend, project, name, number)
                if record.paged:
                    continue
                try:
                    files = read_file_list(store, record).files
                except NotFoundError:
                    continue  # already broken: nothing of it to move
                report.versions += 1
                sizes.update((f.sha256, f.size) for f in files if f.ref is None and f.size < SMALL_FILE_MAX)
    return sizes


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
