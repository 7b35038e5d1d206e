"""Logging a version: files -> hashes -> blobs -> file list -> version record -> aliases.

Only blobs the store lacks are uploaded: the latest version's file list proves which exist,
the rest are checked in parallel. Each upload is checked against the hash recorded when the
file was added, so a file that changed since fails the log before any version record is
written. The blobs this writer relies on are protected from a concurrent ``gc`` for as long
as it runs (``protection.Protection``); after the commit, blobs that were found (not
uploaded) are checked again and uploaded if a collector removed them meanwhile.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

from . import keys
from .blobs import Progress
from .chunk_upload import ChunkPlan, needs_cutting, pack_if_new, plan_chunks, send_chunks, with_chunks
from .errors import IntegrityError, NotFoundError
from .filelists import latest_file_list, page_reader, version_entries
from .hashing import sha256_bytes
from .manifest_pages import build_manifest, entries_key, page_digests
from .pack_writer import PackUploader
from .packs import BuiltPack
from .page_spool import PageSpool
from .path_order import path_key
from .protection import Protection, wait_while_collecting
from .records import FileEntry, FileList, RunRef, VersionRecord, now
from .store import Store
from .versions import CommitResult, commit_version, read_alias, read_version

CrashPoint = Callable[[str], None]
logger = logging.getLogger("registry")


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
    sources: Mapping[str, Path],
    aliases: list[str],
    progress: Progress | None = None,
    after: int | None = -1,
) -> CommitResult:
    """Upload what is missing and commit ``draft``; ``sources`` maps sha256 -> a local file.

    An entry with no source (a file an incremental draft keeps from an earlier version) must
    already be in the store: it is checked, never uploaded. A reference (``entry.ref``) has no
    blob: it is only listed in the file list. ``after``: see ``commit_version``. The store's
    format (``REGISTRY_FORMAT``) decides how: one file list (1) or manifest pages (2).
    """
    if store.settings.store_format == 2:
        return _publish_paged(store, draft, entries, sources, aliases, progress, after)
    crash = _crash_hook()
    file_list = FileList.build(entries)
    body = file_list.to_bytes()
    digest = sha256_bytes(body)
    draft = draft.model_copy(update={"digest": digest, "size": file_list.size, "file_count": len(entries)})
    unchanged = _same_as_latest(store, draft, aliases, _latest_record(store, draft.project, draft.name))
    if unchanged is not None:
        return unchanged
    previous = latest_file_list(store, draft.project, draft.name)
    known = {f.sha256 for f in previous.files if f.ref is None} if previous else set()
    stored = [e for e in entries if e.ref is None]
    wanted = {e.sha256 for e in stored} | {digest}
    store.check_writable()
    with Protection(store.blobs, wanted - known) as guard:  # before checking which blobs exist
        _send_blobs(store, guard, stored, sources, known, progress)
        crash("after-blobs")
        guard.upload_missing({digest: body})
        store.cache.keep(digest, body)  # a pull on this machine needs no request for it
        crash("after-file-list")
        result = commit_version(store.backend, draft, aliases, crash=crash, after=after)
        if result.created:
            guard.settle()
    return result


def _publish_paged(store: Store, draft: VersionRecord, entries: list[FileEntry], sources: Mapping[str, Path],
                   aliases: list[str], progress: Progress | None, after: int | None) -> CommitResult:
    """Format 2: chunks (in packs on a remote store) -> manifest pages -> version record.

    A large file not cut before is cut and its new chunks packed in the same pass (one read);
    everything else is sent once the manifest shows the version is not the latest again."""
    crash = _crash_hook()
    packed = store.writes_packs
    previous = _latest_record(store, draft.project, draft.name)
    with ExitStack() as stack:
        guard: Protection | None = None
        uploader: PackUploader | None = None
        if packed and needs_cutting(entries, sources, store.chunk_memory):
            store.check_writable()
            guard = stack.enter_context(Protection(store.blobs))
            uploader = stack.enter_context(_uploader(store, guard))
            store.pack_indexes.load(previous.packs or () if previous is not None else ())
            store.pack_indexes.load_all()  # what the store holds, so that only new chunks are packed
            entries = with_chunks(entries, sources, store.chunk_memory,
                                  on_chunk=pack_if_new(store.pack_indexes, uploader, progress))
        elif packed:
            entries = with_chunks(entries, sources, store.chunk_memory)
        ordered = sorted(entries, key=lambda e: path_key(e.path))
        key = entries_key(ordered)
        remembered = store.manifest_memory.get(key)
        if remembered is not None and previous is not None and previous.digest == remembered:
            same = draft.model_copy(update={"digest": remembered})
            unchanged = _same_as_latest(store, same, aliases, previous)
            if unchanged is not None:  # the same files as the latest version: no page built
                return unchanged
        pages = stack.enter_context(PageSpool())  # kept until settled: a page may be sent again
        root = build_manifest(ordered, pages.put)
        store.manifest_memory.put(key, root.digest)
        draft = draft.model_copy(update={"schema_version": 2, "digest": root.digest, "size": root.bytes,
                                         "file_count": root.files})
        unchanged = _same_as_latest(store, draft, aliases, previous)
        if unchanged is not None:
            return unchanged
        known_pages = _pages_of(store, previous)
        stored = [e for e in entries if e.ref is None]
        if guard is None:
            store.check_writable()
            guard = stack.enter_context(Protection(store.blobs))
        guard.cover(set(pages.pages) - known_pages)  # before checking which exist
        plan = None
        if packed:
            hints = previous.packs or () if previous is not None else ()
            plan = plan_chunks(store.pack_indexes, store.blobs, stored, hints, sources,
                               look_for_loose=previous is None or not previous.paged,
                               sent=uploader.holds if uploader is not None else None)
            guard.cover(plan.relied_packs | plan.loose)
            if uploader is None:
                uploader = stack.enter_context(_uploader(store, guard))
            send_chunks(uploader, stored, sources, plan.new, progress)
            uploader.finish()
            packs = tuple(sorted(plan.relied_packs | set(uploader.packs)))
            draft = draft.model_copy(update={"packs": packs})
        else:
            known = {e.sha256 for e in _entries_of(store, previous)}
            _send_blobs(store, guard, stored, sources, known, progress)
        crash("after-blobs")
        guard.upload_missing({sha: page for sha, page in pages.pages.items() if sha not in known_pages})
        store.cache.keep(root.digest, pages.body(root.digest))  # a pull here needs no request for it
        crash("after-file-list")
        result = commit_version(store.backend, draft, aliases, crash=crash, after=after)
        if result.created:
            guard.settle()
            if plan is not None and uploader is not None:
                _settle_packs(store, guard, plan, set(uploader.packs), stored, sources)
    return result


def _uploader(store: Store, guard: Protection) -> PackUploader:
    """Packs named in the writer's marker before they are uploaded (gc never takes them early),
    and known to the pack indexes once uploaded (checking the pages then fetches no index back)."""
    def written(built: BuiltPack) -> None:
        store.pack_indexes.add_written(built.pack_id, built.index, built.entries)

    return PackUploader(store.backend, announce=guard.cover, written=written, crash=_crash_hook())


def _same_as_latest(store: Store, draft: VersionRecord, aliases: list[str],
                    latest: VersionRecord | None) -> CommitResult | None:
    """The latest version, when ``draft`` holds the same contents and nothing else is to change:
    nothing to upload, no probe, no in-flight marker."""
    if latest is not None and latest.digest == draft.digest and not aliases \
            and not store.backend.exists(keys.version(draft.project, draft.name, latest.version + 1)):
        return CommitResult(latest, created=False)
    return None


def _latest_record(store: Store, project: str, name: str) -> VersionRecord | None:
    found = read_alias(store.backend, project, name, "latest")
    if found is None:
        return None
    try:
        return read_version(store.backend, project, name, found[0].version)
    except LookupError:
        return None


def _pages_of(store: Store, record: VersionRecord | None) -> set[str]:
    """The manifest pages the store holds for ``record`` (unchanged pages are not sent again)."""
    if record is None or not record.paged:
        return set()
    try:
        return set(page_digests(page_reader(store, record), record.digest))
    except (LookupError, IntegrityError):
        return set()


def _entries_of(store: Store, record: VersionRecord | None) -> list[FileEntry]:
    if record is None:
        return []
    try:
        return [e for e in version_entries(store, record) if e.ref is None]
    except (LookupError, IntegrityError):
        return []


def _send_blobs(store: Store, guard: Protection, stored: list[FileEntry], sources: Mapping[str, Path],
                known: set[str], progress: Progress | None) -> None:
    """Files stored whole as blobs: upload those the store lacks; kept ones must be there."""
    new_shas = {e.sha256 for e in stored} - known
    held = new_shas - set(sources)
    _require_present(store, held, stored)
    guard.upload_missing({sha: sources[sha] for sha in new_shas - held}, progress=progress)


def _settle_packs(store: Store, guard: Protection, plan: ChunkPlan, own: set[str], entries: list[FileEntry],
                  sources: Mapping[str, Path]) -> None:
    """After the commit: a collector that ran meanwhile may have removed a pack this writer found
    chunks in, or a format-1 blob it found a whole file as (both were named in the marker only
    after they were found). Those chunks are found elsewhere (a repack) or sent again from the
    local files. If the marker lapsed, a collector may have taken any of the writer's packs
    (``own``: those it wrote)."""
    at_risk = plan.relied_packs | own if guard.lapsed else plan.relied_packs
    wait_while_collecting(store.backend)
    checked = sorted(at_risk)
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(checked)))) as pool:  # a HEAD each, at once
        present = list(pool.map(lambda pack: store.backend.exists(keys.pack(pack)), checked))
    gone = {pack for pack, here in zip(checked, present) if not here}
    lost: set[str] = set()
    if gone:  # rare: which of the version's chunks does the store hold now, and where?
        for pack in gone:
            store.pack_indexes.forget(pack)
        needed = {chunk for e in entries for chunk, _ in e.chunk_list()} - plan.loose
        found = store.pack_indexes.locate(needed)
        # an index can outlive its pack (written after a collector listed the indexes): not a copy
        lost = {chunk for chunk in needed if chunk not in found or found[chunk].pack in gone}
    lost |= store.blobs.missing(plan.loose)
    if lost:
        logger.info("registry: %d chunk(s) removed by a concurrent gc are sent again", len(lost))
        with _uploader(store, guard) as uploader:
            send_chunks(uploader, [e for e in entries if e.sha256 in sources], sources, lost)


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
