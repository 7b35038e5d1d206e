"""Materialise a version's files in a download root, from the cache, verified and atomically.

Every blob is fetched and verified into the cache before anything is placed, so a missing
or corrupt blob leaves the root untouched. Files already in place are left alone; nothing
is ever written through a symlink.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .cache import Cache
from .errors import InvalidNameError
from .hashing import HashState
from .names import validate_path
from .records import FileEntry
from .tempnames import temp_beside

PLACE_WORKERS = 2
"""Copies run in the kernel: two threads overlap them; more only contend (measured on 2 cores)."""

Progress = Callable[[int, int], None]
"""Called with (bytes, 0) as blobs arrive (or are found in the cache), then (0, 1) as each file lands."""


@dataclass
class DownloadReport:
    root: Path
    placed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def safe_destination(root: Path, path: str) -> Path:
    """``root/path``, refusing any path that is unsafe or whose directories are symlinks."""
    validate_path(path)
    dest = root
    for part in path.split("/")[:-1]:
        dest = dest / part
        if dest.is_symlink():
            raise InvalidNameError(f"download root {root} holds a symlink at {dest}: refusing to write through it; remove it or choose another directory")
        if dest.exists() and not dest.is_dir():
            raise InvalidNameError(f"{dest} is a file but {path!r} needs a directory there: remove it or choose another directory")
        if not dest.exists():
            break  # nothing below a missing directory can be a symlink yet
    return root.joinpath(*path.split("/"))


def _is_current(dest: Path, entry: FileEntry, cache_path: Path | None, hashes: HashState) -> bool:
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return False
    if not os.path.isfile(dest) or os.path.islink(dest) or st.st_size != entry.size:
        return False
    if cache_path is not None:
        try:
            cst = os.stat(cache_path)
            if (cst.st_dev, cst.st_ino) == (st.st_dev, st.st_ino):
                return True
        except FileNotFoundError:
            pass
    return hashes.lookup(dest.absolute(), st) == entry.sha256


def materialize(
    cache: Cache,
    hashes: HashState,
    files: list[FileEntry],
    root: Path,
    *,
    workers: int = 16,
    clean: bool = False,
    progress: Progress | None = None,
) -> DownloadReport:
    """Make ``root`` hold exactly ``files`` (plus extras, removed only with ``clean``)."""
    root = Path(root)
    if root.is_symlink() and not root.is_dir():
        raise InvalidNameError(f"download root {root} is a dangling symlink: choose another directory")
    if root.exists() and not root.is_dir():
        raise InvalidNameError(f"download root {root} is a file, not a directory: choose another directory")
    report = DownloadReport(root=root)
    checked: dict[str, Path] = {}
    targets = [(entry, _safe_destination_memo(root, entry.path, checked)) for entry in files]
    cached: dict[str, Path | None] = cache.valid_entries({e.sha256: e.size for e in files})
    current = [_is_current(d, e, cached[e.sha256], hashes) for e, d in targets]
    todo = [target for target, ok in zip(targets, current) if not ok]
    report.unchanged = [e.path for (e, _), ok in zip(targets, current) if ok]

    unique = list({e.sha256: e for e, _ in todo}.values())
    missing = [e for e in unique if cached[e.sha256] is None]
    if progress:
        for e in unique:
            if cached[e.sha256] is not None:
                progress(e.size, 0)
    made = _make_directories(root, todo) if missing else []
    # Where placing means copying bytes, each fetched blob is also written straight into a
    # temp file beside its first destination while it streams in: no second pass over it.
    early: dict[str, Path] = {}
    first: dict[str, Path] = {}
    if missing and cache.copies_into(root):
        for entry, dest in todo:
            first.setdefault(entry.sha256, dest)
        early = {e.sha256: temp_beside(first[e.sha256]) for e in missing}

    def fetched_bytes(count: int) -> None:
        progress(count, 0)  # type: ignore[misc]

    def fetch(entry: FileEntry) -> tuple[str, Path]:
        path = cache.ensure(entry.sha256, entry.size, what=entry.path, copy_to=early.get(entry.sha256),
                            progress=fetched_bytes if progress else None)
        return entry.sha256, path

    try:
        if missing:
            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(missing)))) as pool:
                cached.update(pool.map(fetch, missing))  # all verified before any placement
    except BaseException:
        for temp in early.values():
            temp.unlink(missing_ok=True)
        for directory in reversed(made):  # leave the root as it was
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    finally:
        cache.touch([])  # keep what was verified, even when another blob failed
    sources = [cached[e.sha256] for e, _ in todo]
    _make_directories(root, todo)  # again: a symlink could have appeared during the fetch

    def place(item: tuple[tuple[FileEntry, Path], Path]) -> tuple[Path, os.stat_result, str]:
        (entry, dest), source = item
        temp = early.pop(entry.sha256, None) if first.get(entry.sha256) == dest else None
        if temp is not None:
            os.replace(temp, dest)
        else:
            try:
                cache.place(source, dest)
            except FileNotFoundError:  # evicted by another process between fetch and placement
                cache.place(cache.ensure(entry.sha256, entry.size, what=entry.path), dest)
        if progress:
            progress(0, 1)
        return dest.absolute(), os.stat(dest), entry.sha256

    placed_stats = []
    try:
        if todo:
            with ThreadPoolExecutor(max_workers=min(PLACE_WORKERS, len(todo))) as pool:
                placed_stats = list(pool.map(place, zip(todo, sources)))
    finally:
        for temp in early.values():
            temp.unlink(missing_ok=True)
    report.placed = [entry.path for entry, _ in todo]
    hashes.remember(placed_stats)
    cache.touch(sources)
    report.extra = _extras(root, {e.path for e in files})
    if clean:
        for path in report.extra:
            (root / path).unlink()
            report.removed.append(path)
    return report


def _make_directories(root: Path, todo: list[tuple[FileEntry, Path]]) -> list[Path]:
    """Create the directories ``todo`` needs, each checked for symlinks; returns those created, outermost first."""
    made: list[Path] = []
    done: set[Path] = set()
    for entry, dest in todo:
        if dest.parent in done:
            continue
        missing = []
        directory = dest.parent
        while not directory.exists() and directory not in missing:
            missing.append(directory)
            if directory == directory.parent:
                break
            directory = directory.parent
        dest.parent.mkdir(parents=True, exist_ok=True)
        safe_destination(root, entry.path)
        made.extend(reversed(missing))
        done.add(dest.parent)
    return made


def _safe_destination_memo(root: Path, path: str, checked: dict[str, Path]) -> Path:
    """``safe_destination``, checking each directory once per download."""
    directory, _, name = path.rpartition("/")
    validate_path(path)
    if directory not in checked:
        checked[directory] = safe_destination(root, path).parent
    return checked[directory] / name


def _extras(root: Path, expected: set[str]) -> list[str]:
    extra = []
    if not root.is_dir():
        return extra
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for name in filenames:
            path = name if rel == "." else f"{rel}/{name}"
            if path not in expected and not name.endswith(".part"):
                extra.append(path)
    return sorted(extra)
