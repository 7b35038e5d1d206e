"""The directory a download fills: safe destinations, what is already there, what is extra.

Every destination is checked against the root (no path escapes it, no directory on the way is
a symlink); each file already there is sorted before anything is written; temp files left by
a killed download are recognised by their owner's process id and removed. A root that does not
exist yet is built in a hidden directory beside it and renamed into place whole (``built_beside``).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path

from .errors import InvalidNameError
from .hashing import HashState, sha256_file
from .names import validate_path
from .records import FileEntry
from .tempnames import is_abandoned, is_temp_name, temp_beside


class DestState(Enum):
    """How a destination compares with the version's file."""

    ABSENT = "absent"
    CURRENT = "current"
    STALE = "stale"  # bytes the registry knows (an older version's): replaced without asking
    EDITED = "edited"  # bytes it never saw there: a local edit


def safe_destination(root: Path, path: str) -> Path:
    """``root/path``, refusing any path that is unsafe or whose directories are symlinks."""
    validate_path(path)
    dest = root
    for part in path.split("/")[:-1]:
        dest = dest / part
        if dest.is_symlink():
            raise InvalidNameError(f"download root {root} holds a symlink at {dest}: "
                                   "refusing to write through it; remove it or choose another directory")
        if dest.exists() and not dest.is_dir():
            raise InvalidNameError(f"{dest} is a file but {path!r} needs a directory there: "
                                   "remove it or choose another directory")
        if not dest.exists():
            break  # nothing below a missing directory can be a symlink yet
    return root.joinpath(*path.split("/"))


def survey(targets: list[tuple[FileEntry, str]], hashes: HashState,
           valid_entries: Callable[[dict[str, int | None]], dict[str, str | None]],
           recoverable: Callable[[set[str]], set[str]]) -> list[DestState]:
    """How each destination compares with the version: one stat each and batched hash look-ups;
    only files the registry never saw are hashed. A file the hash database confirms costs
    nothing more; only the others are checked against the cache (``valid_entries``: a hard
    link to a valid entry is current).

    A file whose bytes the registry knows is STALE (replaced without asking) only if those bytes
    can be had again (``recoverable``: in the cache or the store, e.g. an older version's);
    bytes known only because they were hashed (added to a draft that was never logged) exist
    nowhere else, so that file counts as a local edit.
    """
    states: list[DestState] = []
    existing: list[tuple[int, str, os.stat_result]] = []
    for _entry, dest in targets:
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            states.append(DestState.ABSENT)
            continue
        states.append(DestState.EDITED)
        if stat.S_ISREG(st.st_mode):
            existing.append((len(states) - 1, dest, st))
    known = hashes.lookup_many([(path, st) for _, path, st in existing])
    unconfirmed: dict[str, int | None] = {}
    for (i, _, _), sha in zip(existing, known):
        if sha != targets[i][0].sha256:
            unconfirmed[targets[i][0].sha256] = targets[i][0].size
    cached = valid_entries(unconfirmed) if unconfirmed else {}
    verified = []
    stale: dict[int, str] = {}
    for (i, path, st), sha in zip(existing, known):
        entry = targets[i][0]
        if sha == entry.sha256 or _same_inode(cached.get(entry.sha256), st):
            states[i] = DestState.CURRENT
        elif sha is not None:
            states[i] = DestState.STALE
            stale[i] = sha
        elif st.st_size == entry.size and sha256_file(path) == entry.sha256:
            states[i] = DestState.CURRENT
            verified.append((path, st, entry.sha256))
    hashes.remember(verified)
    safe = recoverable(set(stale.values())) if stale else set()
    for i, sha in stale.items():
        if sha not in safe:
            states[i] = DestState.EDITED
    return states


def _same_inode(cache_path: str | None, st: os.stat_result) -> bool:
    if cache_path is None:
        return False
    try:
        cst = os.stat(cache_path)
    except FileNotFoundError:
        return False
    return (cst.st_dev, cst.st_ino) == (st.st_dev, st.st_ino)


def check_root(root: Path) -> None:
    if root.is_symlink() and not root.is_dir():
        raise InvalidNameError(f"download root {root} is a dangling symlink: choose another directory")
    if root.exists() and not root.is_dir():
        raise InvalidNameError(f"download root {root} is a file, not a directory: choose another directory")


def make_directories(root: Path, todo: list[tuple[FileEntry, str]]) -> list[Path]:
    """Create the directories ``todo`` needs, each checked for symlinks; returns those created,
    outermost first."""
    made: list[Path] = []
    done: set[str] = set()
    for entry, dest in todo:
        parent = dest.rpartition("/")[0]  # as ``safe_destination_memo`` joined it (a sixth of ``dirname``)
        if parent in done:
            continue
        missing = []
        directory = Path(parent)
        while not directory.exists() and directory not in missing:
            missing.append(directory)
            if directory == directory.parent:
                break
            directory = directory.parent
        safe_destination(root, entry.path)  # before mkdir: never create directories through a symlink
        os.makedirs(parent, exist_ok=True)
        safe_destination(root, entry.path)
        made.extend(reversed(missing))
        done.add(parent)
    return made


def safe_destination_memo(root: Path, path: str, checked: dict[str, str]) -> str:
    """``safe_destination`` as a string, checking each directory once per download."""
    directory, _, name = path.rpartition("/")
    validate_path(path)
    if directory not in checked:
        checked[directory] = str(safe_destination(root, path).parent)
    return f"{checked[directory]}/{name}"


class RootAppeared(Exception):
    """The root that was being built beside it was made meanwhile (by another process)."""


@contextlib.contextmanager
def built_beside(root: Path) -> Iterator[tuple[Path, int]]:
    """A new hidden directory beside ``root`` (which does not exist) to fill, renamed to ``root``
    when the block ends, and the count of abandoned ones removed (a killed download's).

    Nothing of the download is visible before it is complete, and each file is written under its
    own name (no temp file and rename each: a third of placing a small file). On failure the
    directory, and the root's parents made for it, are removed. A root that appeared meanwhile
    raises ``RootAppeared`` (the directory removed): the caller fills it as it is.
    """
    made: list[Path] = []
    parent = root.parent
    while not os.path.lexists(parent):
        made.append(parent)
        parent = parent.parent
    staging = temp_beside(root)
    try:
        os.makedirs(root.parent, exist_ok=True)
        leftovers = remove_abandoned_directories(root.parent)
        os.mkdir(staging)
        yield staging, leftovers
        if os.path.lexists(root):  # rename would replace an empty directory: leave it to the caller
            raise RootAppeared(root)
        try:
            os.rename(staging, root)  # the files keep their inodes and mtimes: the hash database holds
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise RootAppeared(root) from e
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in made:  # innermost first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def remove_abandoned_directories(parent: Path) -> int:
    """Remove the directories a killed download was building in ``parent``; returns how many."""
    removed = 0
    try:
        found = [e for e in os.scandir(parent) if is_temp_name(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for entry in found:
        if is_abandoned(entry.name):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def extras(root: Path, expected: set[str]) -> tuple[list[str], int]:
    """Files in ``root`` the version does not hold; temp files (and the directories of a download
    into a new sub-directory) left by a killed download are removed."""
    extra: list[str] = []
    leftovers = 0
    if not root.is_dir():
        return extra, leftovers
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        if any(is_temp_name(name) for name in dirnames):  # another download's: never its files
            leftovers += remove_abandoned_directories(Path(dirpath))
            dirnames[:] = [name for name in dirnames if not is_temp_name(name)]
        for name in filenames:
            if is_temp_name(name):
                if is_abandoned(name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        leftovers += 1
                continue
            path = name if rel == "." else f"{rel}/{name}"
            if path not in expected:
                extra.append(path)
    return sorted(extra), leftovers
