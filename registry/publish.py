"""Logging a version: files -> hashes -> blobs -> file list -> version record -> aliases.

Only blobs the store lacks are uploaded: the latest version's file list proves which exist,
the rest are checked in parallel. Each upload is checked against the hash recorded when the
file was added, so a file that changed since fails the log before any version record is
written. The blobs this writer relies on are protected from a concurrent ``gc`` for as long
as it runs (``protection.Protection``); after the commit, blobs that were found (not
uploaded) are checked again and uploaded if a collector removed them meanwhile.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from . import keys
from .blobs import Progress
from .errors import NotFoundError
from .filelists import latest_file_list
from .hashing import sha256_bytes
from .protection import Protection
from .records import FileEntry, FileList, RunRef, VersionRecord, now
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


def publish(
    store: Store,
    draft: VersionRecord,
    entries: list[FileEntry],
    sources: dict[str, Path],
    aliases: list[str],
    progress: Progress | None = None,
    after: int | None = -1,
) -> CommitResult:
    """Upload what is missing and commit ``draft``; ``sources`` maps sha256 -> a local file.

    An entry with no source (a file an incremental draft keeps from an earlier version) must
    already be in the store: it is checked, never uploaded. A reference (``entry.ref``) has no
    blob: it is only listed in the file list. ``after``: see ``commit_version``.
    """
    crash = _crash_hook()
    file_list = FileList.build(entries)
    body = file_list.to_bytes()
    digest = sha256_bytes(body)
    draft = draft.model_copy(update={"digest": digest, "size": file_list.size, "file_count": len(entries)})
    found = read_alias(store.backend, draft.project, draft.name, "latest")
    if found is not None and found[0].digest == digest and not aliases \
            and not store.backend.exists(keys.version(draft.project, draft.name, found[0].version + 1)):
        # the same contents as the latest version: nothing to upload, no probe, no in-flight marker
        latest = read_version(store.backend, draft.project, draft.name, found[0].version)
        return CommitResult(latest, created=False)
    previous = latest_file_list(store, draft.project, draft.name)
    known = {f.sha256 for f in previous.files if f.ref is None} if previous else set()
    stored = [e for e in entries if e.ref is None]
    wanted = {e.sha256 for e in stored} | {digest}
    store.check_writable()
    with Protection(store.blobs, wanted - known) as guard:  # before checking which blobs exist
        new_shas = {e.sha256 for e in stored} - known
        held = new_shas - set(sources)
        _require_present(store, held, stored)
        guard.upload_missing({sha: sources[sha] for sha in new_shas - held}, progress=progress)
        crash("after-blobs")
        guard.upload_missing({digest: body})
        store.cache.keep(digest, body)  # a pull on this machine needs no request for it
        crash("after-file-list")
        result = commit_version(store.backend, draft, aliases, crash=crash, after=after)
        if result.created:
            guard.settle()
    return result


def _require_present(store: Store, shas: set[str], entries: list[FileEntry]) -> None:
    absent = store.blobs.missing(shas)
    if absent:
        paths = sorted(e.path for e in entries if e.sha256 in absent)
        raise NotFoundError(
            f"{len(paths)} file(s) kept from an earlier version are no longer in the store: "
            f"{', '.join(paths[:5])}; add them again from local files"
        )


def draft_record(
    project: str,
    name: str,
    type: str,
    description: str | None,
    metadata: dict,
    run: RunRef | None,
) -> VersionRecord:
    return VersionRecord(
        project=project, name=name, version=0, type=type, description=description, metadata=metadata,
        digest="0" * 64, size=0, file_count=0, created_at=now(), created_by=run, commit_id="",
    )
