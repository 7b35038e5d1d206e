"""Logging a version: files -> hashes -> blobs -> file list -> version record -> aliases.

Only blobs the store lacks are uploaded: the latest version's file list proves which exist,
the rest are checked in parallel. An in-flight marker protects the blobs this writer relies
on from a concurrent ``gc``; after the commit, blobs that were found (not uploaded) are
checked again and re-uploaded if a collector removed them meanwhile.
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from . import keys
from .blobs import Progress
from .errors import IntegrityError
from .hashing import sha256_bytes
from .records import FileEntry, FileList, InflightMarker, RunRef, VersionRecord, now, parse
from .store import Store
from .versions import CommitResult, commit_version, read_alias, read_version

CrashPoint = Callable[[str], None]


def _no_crash(label: str) -> None:
    pass


def _crash_hook() -> CrashPoint:
    """Tests stop a writer at a labelled point: ``REGISTRY_TEST_CRASH_AT`` exits at once,
    ``REGISTRY_TEST_PAUSE_AT`` announces the point on stdout and waits to be killed."""
    crash_at = os.environ.get("REGISTRY_TEST_CRASH_AT")
    pause_at = os.environ.get("REGISTRY_TEST_PAUSE_AT")
    if not crash_at and not pause_at:
        return _no_crash

    def crash(point: str) -> None:
        if point == crash_at:
            os._exit(77)
        if point == pause_at:
            print(f"PAUSED {point}", flush=True)
            time.sleep(3600)

    return crash


def latest_file_list(store: Store, project: str, name: str) -> FileList | None:
    found = read_alias(store.backend, project, name, "latest")
    if found is None:
        return None
    try:
        return read_file_list(store, read_version(store.backend, project, name, found[0].version))
    except (LookupError, IntegrityError):
        return None


def read_file_list(store: Store, record: VersionRecord) -> FileList:
    """A version's file list, from the cache when already fetched, verified against the digest."""
    path = store.cache.ensure(record.digest, size=None, what=f"file list of {record.project}/{record.name}:v{record.version}")
    store.cache.touch([path])
    return parse(FileList, path.read_bytes(), keys.blob(record.digest))


def publish(
    store: Store,
    draft: VersionRecord,
    entries: list[FileEntry],
    sources: dict[str, Path],
    aliases: list[str],
    progress: Progress | None = None,
) -> CommitResult:
    """Upload what is missing and commit ``draft``; ``sources`` maps sha256 -> a local file."""
    crash = _crash_hook()
    file_list = FileList.build(entries)
    body = file_list.to_bytes()
    digest = sha256_bytes(body)
    draft = draft.model_copy(update={"digest": digest, "size": file_list.size, "file_count": len(entries)})
    found = read_alias(store.backend, draft.project, draft.name, "latest")
    if found is not None and found[0].digest == digest and not aliases \
            and not store.backend.exists(keys.version(draft.project, draft.name, found[0].version + 1)):
        # the same contents as the latest version: nothing to upload, no probe, no in-flight marker
        return CommitResult(read_version(store.backend, draft.project, draft.name, found[0].version), created=False)
    previous = latest_file_list(store, draft.project, draft.name)
    known = {f.sha256 for f in previous.files} if previous else set()
    wanted = {e.sha256 for e in entries} | {digest}
    store.check_writable()
    marker = keys.inflight(uuid.uuid4().hex)
    store.backend.write(marker, InflightMarker(started_at=now(), blobs=sorted(wanted - known)).to_bytes())
    try:
        missing = store.blobs.missing({e.sha256 for e in entries} - known)
        store.blobs.upload({sha: sources[sha] for sha in missing}, progress=progress)
        crash("after-blobs")
        if store.blobs.missing([digest]):
            store.backend.write(keys.blob(digest), body, sha256=digest)
        crash("after-file-list")
        result = commit_version(store.backend, draft, aliases, crash=crash)
        found_not_uploaded = (wanted - known) - missing
        if found_not_uploaded and result.created:
            _restore_collected(store, found_not_uploaded, digest, body, sources)
    finally:
        store.backend.delete(marker)
    return result


def _restore_collected(store: Store, shas: set[str], digest: str, body: bytes, sources: dict[str, Path]) -> None:
    """Re-upload blobs this version relies on that a concurrent ``gc`` removed after we found them."""
    from .gc import wait_while_collecting

    wait_while_collecting(store)
    for sha in store.blobs.missing(shas):
        if sha == digest:
            store.backend.write(keys.blob(digest), body, sha256=digest)
        else:
            store.blobs.upload({sha: sources[sha]})


def draft_record(project: str, name: str, type: str, description: str | None, metadata: dict, run: RunRef | None) -> VersionRecord:
    return VersionRecord(
        project=project, name=name, version=0, type=type, description=description, metadata=metadata,
        digest="0" * 64, size=0, file_count=0, created_at=now(), created_by=run, commit_id="",
    )
