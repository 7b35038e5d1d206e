"""Garbage collection: delete blobs that nothing references, safely beside running writers.

A blob is deleted only when (1) no version's file list, run file or history image
references it, (2) it is older than the grace period, and (3) no live writer's in-flight
marker names it. The protocol shared with writers (markers, their leases, the collector's
lock) lives in ``protection``: the collector holds its lock for its whole run and reads
markers before and again after computing what is referenced; writers do the rest.
"""
from __future__ import annotations

import json
import time
from collections.abc import Collection

from . import keys
from .errors import NotFoundError, StorageError
from .filelists import page_reader, read_file_list, version_entries
from .gc_index_sets import compact_indexes
from .gc_packs import collect_packs, list_packs
from .gc_report import GcReport
from .lifecycle import deleted_numbers
from .manifest_pages import page_digests
from .protection import collecting, live_markers
from .records import RunRecord, VersionRecord, parse
from .store import Store
from .versions import read_version, version_numbers

DEFAULT_GRACE_SECONDS = 24 * 3600


def referenced_blobs(store: Store, tombstone_grace: float = 0.0,
                     retiring: Collection[tuple[str, str, int]] = ()) -> set[str]:
    """Every blob a version, a run file or a logged image refers to.

    A deleted version stops counting once its tombstone is ``tombstone_grace`` seconds old (a
    writer that took its blobs as present just before it was deleted has that long to commit);
    ``retiring`` (project, name, number) are counted as deleted just now (a dry run's retention).
    """
    backend = store.backend
    used: set[str] = set()
    started = time.time()
    for project in backend.list_children(keys.projects_prefix()):
        for name in backend.list_children(keys.artifacts_prefix(project)):
            older_than = tombstone_grace if tombstone_grace > 0 else None  # 0: all, whatever the clocks
            gone = deleted_numbers(backend, project, name, older_than=older_than, now_ts=started)
            if tombstone_grace <= 0:
                gone |= {n for p, a, n in retiring if (p, a) == (project, name)}
            for number in version_numbers(backend, project, name):
                if number in gone:
                    continue
                record = read_version(backend, project, name, number)
                used.add(record.digest)
                try:
                    used.update(_blobs_of(store, record))
                except NotFoundError:
                    continue  # already broken: nothing of it to protect
        for run_id in backend.list_children(keys.runs_prefix(project)):
            try:
                run = parse(RunRecord, backend.read(keys.run(project, run_id)), keys.run(project, run_id))
            except FileNotFoundError:
                continue
            used.update(f.sha256 for f in run.files)
            for info in backend.list(keys.history_prefix(project, run_id)):
                used.update(_image_blobs(backend.read(info.key)))
    return used


def _blobs_of(store: Store, record: VersionRecord) -> set[str]:
    """The blobs and chunks a version needs: its files' (or their chunks') and its manifest pages."""
    if not record.paged:
        return {f.sha256 for f in read_file_list(store, record).files}
    used = set(page_digests(page_reader(store, record), record.digest))
    for entry in version_entries(store, record):
        if entry.ref is None:
            used.update(chunk for chunk, _ in entry.chunk_list())
    return used


def _image_blobs(chunk: bytes) -> set[str]:
    found: set[str] = set()

    def visit(value) -> None:
        if isinstance(value, dict):
            if value.get("_type") == "image" and isinstance(value.get("sha256"), str):
                found.add(value["sha256"])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    for line in chunk.decode(errors="replace").splitlines():
        try:
            visit(json.loads(line))
        except ValueError:
            continue
    return found


def collect_garbage(
    store: Store, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False,
    retiring: Collection[tuple[str, str, int]] = (),
) -> GcReport:
    """Delete unreferenced blobs older than ``grace_seconds``; returns what was (or would be) freed.

    Deleted versions' blobs count as unreferenced once their tombstones are as old as the grace
    period; ``retiring`` names versions a dry run of retention would delete first.
    """
    if store.offline:  # the outbox's blobs are what sync will publish: never garbage
        raise StorageError("gc works on the store itself, not offline: run it without --offline "
                           "or REGISTRY_MODE=offline")
    report = GcReport(dry_run=dry_run)
    with collecting(store.backend, dry_run=dry_run):
        started = time.time()
        listing = list(store.backend.list(keys.blob_prefix()))
        pack_listing = list_packs(store)  # before the markers, like the blobs (see gc_packs)
        protected = live_markers(store.backend, started, remove_expired=not dry_run)
        used = referenced_blobs(store, tombstone_grace=grace_seconds, retiring=retiring)
        # writers that started while we read
        protected |= live_markers(store.backend, time.time(), remove_expired=not dry_run)
        for info in listing:
            sha = keys.sha_of_blob_key(info.key)
            if not report.keeps(live=sha in used, age=started - info.modified, grace_seconds=grace_seconds,
                                in_flight=sha in protected):
                if not dry_run:
                    store.backend.delete(info.key)
                report.deleted.append(info.key)
                report.freed_bytes += info.size
        collect_packs(store, pack_listing, used, protected, started, grace_seconds, report)
        compact_indexes(store, report)
    return report
