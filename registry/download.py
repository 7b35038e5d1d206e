"""Materialise a version's files in a download root, verified and atomically.

Every blob is verified before anything is placed, so a missing or corrupt blob leaves the
root untouched. Bytes come from the cheapest verified source: the cache, a file on this
machine known to hold them (a pushed source, an earlier download), else the store. Files
already in place are left alone; a file edited since the registry placed it is a local
edit: overwritten only when the caller allows it, and always reported. Nothing is ever
written through a symlink.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .cache import Cache
from .download_root import (
    DestState,
    RootAppeared,
    built_beside,
    check_root,
    extras,
    make_directories,
    safe_destination_memo,
    survey,
)
from .errors import LocalEditsError
from .hashing import CHUNK, HashState, write_all
from .records import FileEntry
from .tempnames import remove_if_present, temp_beside

PLACE_WORKERS = 2
"""Copies run in the kernel: two threads overlap them; more only contend (measured on 2 cores)."""
PLACE_BATCH = 256
"""Files placed per task at most."""

EARLY_COPY_MAX = 1024 * 1024
"""Whole (format-1) blobs up to this size are also written into the download root as they
stream in (saving a file open each); larger ones are copied there by the kernel once they are
in the cache (``copy_file_range``: several times faster than writing the bytes again from
Python). Files read out of packs are all written into the root as their chunks land."""

Progress = Callable[[int, int], None]
"""Called with (bytes, 0) as blobs arrive (or are found locally), then (0, 1) as each file lands."""
Prefetch = Callable[[list[FileEntry], Callable[[int], None] | None, dict[str, str]], set[str]]
"""Fills the cache with as many of these files as it can in bulk (format 2: out of packs), and
writes each also into the new file the third argument names for its sha256, if any; returns the
sha256s of the files it wrote there."""


@dataclass
class DownloadReport:
    """What a download did, for callers that report it (the CLI, the UI)."""

    root: Path
    placed: list[str] = field(default_factory=list)
    """Files written by this download (``restored`` among them)."""
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    """Files that had been edited locally and now hold the version's bytes again."""
    extra: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    leftovers_removed: int = 0
    """Temp files of an earlier, killed download that were cleaned up."""
    fetched_files: int = 0
    fetched_bytes: int = 0
    """Blobs downloaded from the store."""
    cached_bytes: int = 0
    """Bytes taken from the local cache."""
    local_bytes: int = 0
    """Bytes copied (and verified) from files on this machine known to hold them."""


def materialize(
    cache: Cache,
    hashes: HashState,
    files: list[FileEntry],
    root: Path,
    *,
    workers: int = 16,
    clean: bool = False,
    overwrite: bool = True,
    progress: Progress | None = None,
    prefetch: Prefetch | None = None,
) -> DownloadReport:
    """Make ``root`` hold ``files`` (plus extras, removed only with ``clean``).

    ``prefetch``, if given, fetches the files the machine lacks into the cache in bulk first;
    whatever it leaves is fetched one blob at a time.

    A file edited locally is overwritten (and listed in ``restored``) only with ``overwrite``;
    without it, ``LocalEditsError`` lists them all before anything is written.
    """
    shown = Path(root)
    root = Path(os.path.abspath(root))  # destinations are absolute strings: the hash database's keys
    check_root(root)
    fill = functools.partial(_fill, cache, hashes, files, workers=workers, clean=clean,
                             overwrite=overwrite, progress=progress, prefetch=prefetch)
    if not os.path.lexists(root):  # nothing there to compare with, nothing extra to find
        report = DownloadReport(root=shown)
        try:
            with built_beside(root) as (staging, report.leftovers_removed):
                return fill(report, staging, root)
        except RootAppeared:  # another process made it meanwhile: fill it as it now is
            pass
    return fill(DownloadReport(root=shown), root, root)


def _fill(cache: Cache, hashes: HashState, files: list[FileEntry], report: DownloadReport,
          work: Path, root: Path, *, workers: int, clean: bool, overwrite: bool,
          progress: Progress | None, prefetch: Prefetch | None) -> DownloadReport:
    """``materialize`` into ``work``: ``root`` itself, or a new directory (nobody else sees it)
    that becomes ``root`` when it is complete: its files are written under their own names."""
    new = work != root
    checked: dict[str, str] = {}
    targets = [(entry, safe_destination_memo(work, entry.path, checked)) for entry in files]
    states = [DestState.ABSENT] * len(targets) if new \
        else survey(targets, hashes, cache.valid_entries, recoverable=lambda shas: _recoverable(cache, shas))
    edited = [e.path for (e, _), s in zip(targets, states) if s is DestState.EDITED]
    if edited and not overwrite:
        raise LocalEditsError(root, edited)
    todo = [target for target, s in zip(targets, states) if s is not DestState.CURRENT]
    in_place = [e for (e, _), s in zip(targets, states) if s is DestState.CURRENT]
    report.unchanged = [e.path for e in in_place]
    cached = cache.valid_entries({e.sha256: e.size for e, _ in todo})  # files in place need no entry
    # an entry counts as used when its file is in place too (checked or not: marking costs no stat)
    used = [p for p in cached.values() if p is not None]
    used += cache.entry_paths({e.sha256 for e in in_place}).values()
    sources = _gather(cache, hashes, todo, cached, work, report, workers, progress, prefetch, new)
    make_directories(work, todo)  # again: a symlink could have appeared during the fetch
    # the hash database learns the paths the files will have (a directory's rename keeps their stat)
    start, final = len(str(work)), str(root)
    remember = hashes.remember if not new \
        else lambda rows: hashes.remember([(final + dest[start:], st, sha) for dest, st, sha in rows])
    # the database's writes run beside the placement (SQLite and the kernel's file work both
    # release the GIL): the entries used are marked, the files placed remembered as batches land
    with ThreadPoolExecutor(max_workers=1) as recorder:
        written = [recorder.submit(cache.touch, used)]
        _place_all(cache, todo, sources, progress,
                   lambda rows: written.append(recorder.submit(remember, rows)), new)
        for done in written:
            done.result()
    cache.touch([])  # records the entries made of local copies (hard-link mode)
    report.placed = [entry.path for entry, _ in todo]
    report.restored = edited
    if not new:
        report.extra, report.leftovers_removed = extras(root, {e.path for e in files})
    if clean:
        for path in report.extra:
            (root / path).unlink()
            report.removed.append(path)
    return report


def _recoverable(cache: Cache, shas: set[str]) -> set[str]:
    """Which of these blobs this machine or the store can give back (a file holding them may be replaced)."""
    in_cache = {sha for sha, path in cache.valid_entries(dict.fromkeys(shas)).items() if path is not None}
    return in_cache | (shas - in_cache - cache.blobs.missing(shas - in_cache))


@dataclass
class _Source:
    """Where one blob's bytes come from at placement: a cache entry, or a local file to verify,
    or a temp file beside its first destination that already holds them (fetched in copy mode)."""

    path: Path | str
    verify: bool = False
    early: str | None = None
    early_dest: str | None = None


Target = tuple[FileEntry, str]
"""A file of the version and where it goes."""


def _gather(cache: Cache, hashes: HashState, todo: list[Target], cached: dict[str, str | None], root: Path,
            report: DownloadReport, workers: int, progress: Progress | None,
            prefetch: Prefetch | None = None, new: bool = False) -> dict[str, _Source | str]:
    """A verified source for every blob ``todo`` needs: a valid cache entry's path (the usual
    case, kept as a plain string) or a ``_Source``; blobs the machine lacks are fetched (all
    before any placement, so a bad blob leaves the root as it was); ``new``: ``root`` is a new
    directory nobody sees yet."""
    unique = list({e.sha256: e for e, _ in todo}.values())
    sources: dict[str, _Source | str] = {
        e.sha256: path for e in unique if (path := cached[e.sha256]) is not None}
    report.cached_bytes = sum(e.size for e in unique if e.sha256 in sources)
    local = _local_copies(hashes, [e.sha256 for e in unique if e.sha256 not in sources], todo)
    sources.update((sha, _Source(path, verify=True)) for sha, path in local.items())
    report.local_bytes = sum(e.size for e in unique if e.sha256 in local)
    if progress:
        for e in unique:
            if e.sha256 in sources:
                progress(e.size, 0)
    missing = [e for e in unique if e.sha256 not in sources]
    if missing:
        sources.update(_fetch(cache, todo, missing, root, workers, progress, prefetch, new))
    if cache.is_store:  # the local store serves as the cache: nothing crosses a network
        report.cached_bytes += sum(e.size for e in missing)
    else:
        report.fetched_files, report.fetched_bytes = len(missing), sum(e.size for e in missing)
    return sources


def _local_copies(hashes: HashState, shas: list[str], todo: list[Target]) -> dict[str, Path]:
    """Files on this machine known to hold these blobs, except those this download replaces."""
    if not shas:  # everything is in the cache: no look-up (a repeat pull pays nothing here)
        return {}
    known = hashes.known_copies(shas)
    destinations = {dest for _, dest in todo}
    return {sha: path for sha, path in known.items() if str(path) not in destinations}


def _fetch(cache: Cache, todo: list[Target], missing: list[FileEntry], root: Path, workers: int,
           progress: Progress | None, prefetch: Prefetch | None,
           new: bool = False) -> dict[str, _Source | str]:
    """Fetch the blobs the machine lacks into the cache: in bulk (``prefetch``) first, the rest
    one by one. Where placing means copying bytes, each small one is also written into a temp
    file beside its first destination as it arrives (placed by a rename: written once, not copied),
    or, in a ``new`` root nobody sees yet, into its first destination itself."""
    made = make_directories(root, todo)
    early: dict[str, tuple[str, str]] = {}
    if cache.copies_into(root):
        first: dict[str, str] = {}
        for entry, dest in todo:
            first.setdefault(entry.sha256, dest)
        early = {e.sha256: (first[e.sha256] if new else temp_beside(first[e.sha256]), first[e.sha256])
                 for e in missing}
    count = (lambda size: progress(size, 0)) if progress else None
    sources: dict[str, _Source | str] = {}
    try:
        rest = missing
        if prefetch is not None:
            wrote = prefetch(missing, count, {sha: temp for sha, (temp, _) in early.items()})
            # a temp file that holds its verified bytes needs no check of its entry (a second
            # destination copies from the entry, and fetches it again if evicted since)
            for sha, path in cache.entry_paths(wrote).items():
                sources[sha] = _Source(path, early=early[sha][0], early_dest=early[sha][1])
            unwritten: dict[str, int | None] = {e.sha256: e.size for e in missing if e.sha256 not in wrote}
            now_cached = cache.valid_entries(unwritten) if unwritten else {}
            sources.update((sha, path) for sha, path in now_cached.items() if path is not None)
            rest = [e for e in missing if e.sha256 not in sources]

        def fetch(entry: FileEntry) -> tuple[str, _Source]:
            # out of packs every file lands in its temp file too; a whole blob up to EARLY_COPY_MAX
            small = entry.size <= EARLY_COPY_MAX
            temp, dest = early.get(entry.sha256, (None, None)) if small else (None, None)
            path = cache.ensure(entry.sha256, entry.size, what=entry.path,
                                copy_to=Path(temp) if temp else None, progress=count, chunks=entry.chunks)
            return entry.sha256, _Source(path, early=temp, early_dest=dest)

        if rest:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(rest)))) as pool:
                sources.update(pool.map(fetch, rest))
        return sources
    except BaseException:
        for temp, _ in early.values():
            remove_if_present(temp)
        for directory in reversed(made):  # leave the root as it was
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    finally:
        cache.touch([])  # keep what was verified, even when another blob failed


Placed = tuple[str, os.stat_result, str]
"""A file just placed, its stat and sha256: what the hash database learns (not of a hard link
to its cache entry: that is recognised by its inode)."""


REMEMBER_BATCH = 16384
"""Files placed that the hash database learns in one transaction (``_place_all``'s ``remember``):
its index by sha256 takes random inserts, and each transaction writes every page it touched
(50,000 files: ~0.4 s of CPU in batches of 16,384, ~0.5 s in 4,096)."""


def _place_all(cache: Cache, todo: list[Target], sources: dict[str, _Source | str],
               progress: Progress | None, remember: Callable[[list[Placed]], object],
               new: bool = False) -> None:
    """Place every file of ``todo``; ``remember`` gets the files placed (not hard links to the
    cache: those are recognised by their inode), a few thousand at a time, as they land. ``new``:
    the destinations are in a directory nobody sees yet, written under their own names."""
    def place(target: Target) -> Placed | None:
        entry, dest = target
        source = sources[entry.sha256]
        if isinstance(source, _Source) and source.verify and cache.would_link and not cache.is_store:
            # hard links go to cache entries, never to the user's own files: a local copy becomes
            # an entry first (one copy, as copy mode makes), so the next pull links it at once;
            # a second file with these bytes links the same entry
            source = sources[entry.sha256] = _adopt_verified(cache, source.path, entry.sha256) \
                or str(_ensure(cache, entry))
        st: os.stat_result | None = None
        if isinstance(source, str):  # a cache entry
            st = _place_cached(cache, source, entry, dest, new)
            if cache.links:
                if progress:
                    progress(0, 1)
                return None
        elif source.early is not None and source.early_dest == dest:
            if source.early != dest:
                os.replace(source.early, dest)
            source.early = None
        elif not (source.verify and _copy_verified(source.path, dest, entry.sha256, new)):
            # from the cache (a local copy that failed its check is fetched into the cache first)
            cached = _ensure(cache, entry) if source.verify else source.path
            st = _place_cached(cache, cached, entry, dest, new)
        if progress:
            progress(0, 1)
        return dest, st if st is not None else os.stat(dest), entry.sha256

    def place_batch(batch: list[Target]) -> list[Placed]:
        return [placed for target in batch if (placed := place(target)) is not None]

    try:
        if not todo:
            return
        batches = place_batches(todo, PLACE_BATCH, PLACE_WORKERS)
        pending: list[Placed] = []
        with ThreadPoolExecutor(max_workers=min(PLACE_WORKERS, len(batches))) as pool:
            for placed in pool.map(place_batch, batches):
                pending.extend(placed)
                if len(pending) >= REMEMBER_BATCH:
                    remember(pending)
                    pending = []
        if pending:
            remember(pending)
    finally:
        for source in sources.values():
            if isinstance(source, _Source) and source.early is not None:
                remove_if_present(source.early)


def place_batches(todo: list[Target], most: int, workers: int) -> list[list[Target]]:
    """``todo`` in batches of at most ``most`` files, each within one directory, taking the
    directories in turn: the threads that place consecutive batches work in different
    directories, so they do not wait on one directory's lock (each new name takes it, and on
    ext4 a file's creation holds it while a free inode is searched for)."""
    by_dir: dict[str, list[Target]] = {}
    for target in todo:
        by_dir.setdefault(target[1].rpartition("/")[0], []).append(target)
    # a task per file would cost more in futures than a small file's copy: hand out batches
    size = max(1, min(most, len(todo) // (4 * workers)))
    runs = [[files[i : i + size] for i in range(0, len(files), size)] for files in by_dir.values()]
    return [batch for turn in itertools.zip_longest(*runs) for batch in turn if batch is not None]


def _place_cached(cache: Cache, entry_path: Path | str, entry: FileEntry, dest: str,
                  new: bool = False) -> os.stat_result | None:
    try:
        return cache.place(entry_path, dest, new=new)
    except FileNotFoundError:  # evicted by another process between fetch and placement
        return cache.place(_ensure(cache, entry), dest, new=new)


def _ensure(cache: Cache, entry: FileEntry) -> Path:
    """``entry``'s bytes as a verified cache entry, fetched if the cache lacks them."""
    return cache.ensure(entry.sha256, entry.size, what=entry.path, chunks=entry.chunks)


def _copy_verified(source: Path | str, dest: str, sha256: str, new: bool = False) -> bool:
    """Copy a local file known to hold ``sha256`` into place, hashing on the way; False (and
    nothing placed) if its bytes turn out to differ, so the caller fetches them instead.
    ``new``: ``dest`` is in a directory nobody sees yet (written under its own name)."""
    if new:
        return _copy_hashed(source, dest, sha256)
    temp = temp_beside(dest)
    if not _copy_hashed(source, temp, sha256):
        return False
    try:
        os.replace(temp, dest)
    except BaseException:
        remove_if_present(temp)
        raise
    return True


def _adopt_verified(cache: Cache, source: Path | str, sha256: str) -> str | None:
    """A local file known to hold ``sha256`` copied into the cache, hashing on the way: the new
    entry's path, or None if its bytes turn out to differ (or it cannot be read)."""
    temp = cache.temp_for(sha256)
    return str(cache.adopt(sha256, temp)) if _copy_hashed(source, temp, sha256) else None


def _copy_hashed(source: Path | str, temp: Path | str, sha256: str) -> bool:
    """Copy ``source`` to the new file ``temp``, hashing on the way; True if the bytes are
    ``sha256``'s, else False with ``temp`` gone."""
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src, open(temp, "xb", buffering=0) as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                write_all(out, chunk)
        if digest.hexdigest() != sha256:
            remove_if_present(temp)
            return False
        return True
    except OSError:  # the source went away or cannot be read: fetch the bytes instead
        remove_if_present(temp)
        return False
    except BaseException:
        remove_if_present(temp)
        raise
