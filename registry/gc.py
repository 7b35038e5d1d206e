"""Garbage collection: delete blobs that nothing references, safely beside running writers.

A blob is deleted only when (1) no version's file list, run file or history image
references it, (2) it is older than the grace period, and (3) no live writer's in-flight
marker names it. The collector announces itself with a lock object for its whole run and
reads markers before and again after computing what is referenced. A writer that relied
on a blob it found (rather than uploaded) waits, after committing, until no collector is
running, then checks those blobs again and re-uploads any that were removed; so whatever
order the two interleave in, the committed version ends with all of its blobs.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from . import keys
from .errors import IntegrityError, NotFoundError
from .publish import read_file_list
from .records import GcLock, InflightMarker, RunRecord, now, parse
from .store import Store
from .versions import read_version, version_numbers

DEFAULT_GRACE_SECONDS = 24 * 3600
MARKER_LEASE_SECONDS = 6 * 3600


@dataclass
class GcReport:
    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_young: int = 0
    kept_in_flight: int = 0
    referenced: int = 0
    dry_run: bool = False


def live_markers(store: Store, now: float) -> set[str]:
    """Blobs named by in-flight markers younger than the lease; stale markers are removed."""
    protected: set[str] = set()
    for info in store.backend.list(keys.inflight_prefix()):
        if now - info.modified > MARKER_LEASE_SECONDS:
            store.backend.delete(info.key)
            continue
        try:
            protected.update(parse(InflightMarker, store.backend.read(info.key), info.key).blobs)
        except (FileNotFoundError, IntegrityError):
            continue
    return protected


def referenced_blobs(store: Store) -> set[str]:
    """Every blob a version, a run file or a logged image refers to."""
    backend = store.backend
    used: set[str] = set()
    for project in backend.list_children(keys.projects_prefix()):
        for name in backend.list_children(keys.artifacts_prefix(project)):
            for number in version_numbers(backend, project, name):
                record = read_version(backend, project, name, number)
                used.add(record.digest)
                try:
                    used.update(f.sha256 for f in read_file_list(store, record).files)
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


def collect_garbage(store: Store, grace_seconds: float = DEFAULT_GRACE_SECONDS, dry_run: bool = False) -> GcReport:
    """Delete unreferenced blobs older than ``grace_seconds``; returns what was (or would be) freed."""
    report = GcReport(dry_run=dry_run)
    lock = keys.gc_lock(uuid.uuid4().hex)
    store.backend.write(lock, GcLock(started_at=now(), dry_run=dry_run).to_bytes())
    try:
        started = time.time()
        listing = list(store.backend.list(keys.blob_prefix()))
        protected = live_markers(store, started)
        used = referenced_blobs(store)
        protected |= live_markers(store, time.time())  # writers that started while we read
        for info in listing:
            sha = keys.sha_of_blob_key(info.key)
            if sha in used:
                report.referenced += 1
            elif started - info.modified < grace_seconds:
                report.kept_young += 1
            elif sha in protected:
                report.kept_in_flight += 1
            else:
                if not dry_run:
                    store.backend.delete(info.key)
                report.deleted.append(info.key)
                report.freed_bytes += info.size
    finally:
        store.backend.delete(lock)
    return report


def wait_while_collecting(store: Store, timeout: float = MARKER_LEASE_SECONDS, poll: float = 0.2) -> None:
    """Block until every collector running now (announced within its lease) has finished.

    Collectors that start later see the writer's committed version, so they are not waited for.
    """
    def running() -> set[str]:
        now_ts = time.time()
        return {i.key for i in store.backend.list(keys.gc_lock_prefix()) if now_ts - i.modified < MARKER_LEASE_SECONDS}

    waiting_for = running()
    deadline = time.time() + timeout
    while waiting_for and time.time() < deadline:
        time.sleep(poll)
        waiting_for &= running()
