"""``ArtifactDraft``: the files gathered for a new version, each hashed as it is added.

A draft is paths with their sha256s and, for files added from this machine, the local file
that holds them; a reference (``add_references``) has no local file and is never uploaded.
A draft made from a logged version (``Artifact.new_draft``) also holds that
version's entries with no local file: their bytes are already in the store, so a new version
that keeps them uploads nothing for them. Logging it (``Run.log_artifact``) reads
``entries()`` and ``sources()``; nothing here knows about stores.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

from .errors import InvalidNameError, NotFoundError
from .names import PathSet, validate_path
from .records import FileEntry
from .store import local_hash_state

SymlinkPolicy = Literal["content", "reject"]


ADD_BATCH = 50_000
"""Files a directory walk hashes and adds at a time: what it holds besides the draft (stats,
paths, results) stays bounded however many files the directory has."""


class ArtifactDraft:
    """Artifact path -> ``FileEntry`` (its sha256 and size), with the local file that holds it
    for files added from this machine; validated as a set on every addition. ``removed`` keeps
    the paths an incremental draft drops from the version it will be added to.

    A million-file draft is a million small entries: a local file is kept as the index of the
    directory (or file) it was added from (``_LocalEntry``), its path rebuilt only when read."""

    def __init__(self, *, incremental: bool = False) -> None:
        self._files: dict[str, FileEntry] = {}
        self._roots: list[tuple[str, str]] = []
        """(artifact path prefix, local prefix): a file's local path is its artifact path with
        the first replaced by the second."""
        self._paths = PathSet()
        self._staging: tempfile.TemporaryDirectory | None = None
        self.incremental = incremental
        self.removed: set[str] = set()

    @contextmanager
    def new_file(self, name: str, mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
        """Write a file straight into the draft (staged in a temp directory until logged)."""
        path = validate_path(name)
        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="registry-artifact-")
        staged = Path(self._staging.name) / f"{len(os.listdir(self._staging.name))}"
        with open(staged, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
        self.add_file(staged, path)

    def add_file(self, local_path: str | os.PathLike, name: str | None = None) -> None:
        """Add a local file under ``name`` (default: its file name)."""
        source = Path(local_path)
        if not source.is_file():
            raise NotFoundError(f"cannot add {source}: no such file")
        path = validate_path(name if name is not None else source.name)
        self._add_many({path: str(source)}, (path, os.path.abspath(source)))

    def add_dir(self, local_path: str | os.PathLike, name: str | None = None, *,
                symlinks: SymlinkPolicy = "content") -> None:
        """Add every file under a directory, under ``name/`` if given.

        Symlinked files inside the tree are stored by content (or refused with
        ``symlinks="reject"``); a link leading out of the tree is always refused.
        """
        base = Path(local_path)
        if not base.is_dir():
            raise NotFoundError(f"cannot add {base}: no such directory")
        prefix = validate_path(name) + "/" if name else ""
        real_base = base.resolve()
        top = os.path.abspath(base)
        root = (prefix, top.rstrip("/") + "/")
        found: dict[str, str] = {}
        stats: list[os.stat_result] = []
        batches = 0
        for entry, rel in _walk(base):
            if entry.is_symlink():
                _check_link(Path(entry.path), base, real_base, symlinks)
            if not entry.is_dir():
                found[validate_path(prefix + rel)] = entry.path
                stats.append(entry.stat())
                if len(found) > ADD_BATCH:  # not at ADD_BATCH: a walk of exactly that many is one batch
                    self._add_many(found, root, stats)
                    found, stats, batches = {}, [], batches + 1
        # a walk that fits one batch reads the hash database in one scan of the directory
        self._add_many(found, root, stats, under=top if batches == 0 else None)

    def remove(self, name: str) -> None:
        """Remove a file, or every file under a directory. An incremental draft also remembers
        the path, to drop it from the version it is added to (checked when logged)."""
        path = validate_path(name)
        doomed = [p for p in self._files if p == path or p.startswith(path + "/")]
        if not doomed and not self.incremental:
            raise NotFoundError(f"{path!r} is not in this artifact")
        for p in doomed:
            del self._files[p]
        if doomed:  # a directory emptied may become a file's name: check the rest afresh
            self._paths = PathSet()
            self._paths.add_all(self._files)
        if self.incremental:
            self.removed.add(path)

    def keep(self, entries: list[FileEntry]) -> None:
        """Add files that are already in the store (a logged version's), with no local file."""
        new = [e for e in entries if e.path not in self._files]
        self._paths.add_all(e.path for e in new)
        for entry in new:
            self._files[entry.path] = FileEntry.trusted(entry.path, entry.sha256, entry.size, entry.ref)

    def add_references(self, entries: list[FileEntry]) -> None:
        """Add references (entries with ``ref``); a path already added differently is refused."""
        for entry in entries:
            before = self._files.get(entry.path)
            if before is not None and (before.sha256, before.ref) != (entry.sha256, entry.ref):
                raise InvalidNameError(
                    f"{entry.path!r} was already added with different contents: "
                    "remove it first or choose another name"
                )
        self.keep(entries)

    def on_top_of(self, base: list[FileEntry]) -> list[FileEntry]:
        """An incremental draft's entries added to ``base`` (the latest version's), less its removals."""
        in_base = {e.path for e in base}
        unknown = sorted(p for p in self.removed if p not in self._files and not _any_under(in_base, p))
        if unknown:
            raise NotFoundError(
                f"cannot remove {', '.join(unknown)}: neither the latest version nor this draft has it"
            )
        kept = [e for e in base if e.path not in self._files and not _under(e.path, self.removed)]
        return kept + list(self._files.values())

    def entries(self) -> list[FileEntry]:
        """The version's file list to be: one entry per path, in the order added."""
        return list(self._files.values())

    def sources(self) -> Mapping[str, Path]:
        """sha256 -> a local file holding those bytes (what an upload reads); files kept from a
        logged version have none. A ``Path`` is made only for a file that is read: a re-log of
        an unchanged dataset reads none."""
        return _LocalFiles(self._files.values(), self._local_file)

    def _local_file(self, entry: _LocalEntry) -> str:
        prefix, local = self._roots[entry.origin]
        return local + entry.path[len(prefix):]

    @property
    def size(self) -> int:
        return sum(entry.size for entry in self._files.values())

    def __len__(self) -> int:
        return len(self._files)

    def close(self) -> None:
        """Drop the staged ``new_file`` files (once logged, their bytes are in the store)."""
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None

    def _add_many(self, files: dict[str, str], root: tuple[str, str],
                  stats: list[os.stat_result] | None = None, under: str | None = None) -> None:
        """Add local files by artifact path, all from ``root`` (see ``_roots``); ``stats``: theirs,
        in the same order, when the caller has them (a directory walk gets them from ``scandir``);
        ``under``: the absolute directory holding them all."""
        if not files:
            return
        paths = list(files)
        hashes = local_hash_state().hash_files([files[p] for p in paths], stats=stats, under=under)
        self._paths.add_all(p for p in paths if p not in self._files)
        if not self._roots or self._roots[-1] != root:
            self._roots.append(root)
        origin = len(self._roots) - 1
        for path, (sha, size) in zip(paths, hashes):
            previous = self._files.get(path)
            if previous and previous.sha256 != sha:
                raise InvalidNameError(
                    f"{path!r} was already added with different contents: "
                    "remove it first or choose another name"
                )
            self._files[path] = _LocalEntry.local(path, sha, size, origin)


class _LocalEntry(FileEntry):
    """A draft's entry for a file added from this machine: ``origin`` is its ``_roots`` index.
    Stored, it is an ordinary entry (the origin is neither serialized nor compared)."""

    __slots__ = ("origin",)
    origin: int

    @classmethod
    def local(cls, path: str, sha256: str, size: int, origin: int) -> _LocalEntry:
        entry = cls.trusted(path, sha256, size)
        object.__setattr__(entry, "origin", origin)
        return entry


class _LocalFiles(Mapping[str, Path]):
    """sha256 -> local file, from a draft's entries and a function giving an entry's local file.
    Indexed by sha256 when first asked: a re-log that sends nothing asks only about large files."""

    def __init__(self, entries: Iterable[FileEntry], local_file: Callable[[_LocalEntry], str]) -> None:
        self._entries: Iterable[FileEntry] | None = entries
        self._local_file = local_file
        self._by_sha: dict[str, _LocalEntry] = {}

    def _files(self) -> dict[str, _LocalEntry]:
        if self._entries is not None:
            self._by_sha = {e.sha256: e for e in self._entries if isinstance(e, _LocalEntry)}
            self._entries = None
        return self._by_sha

    def __getitem__(self, sha256: str) -> Path:
        return Path(self._local_file(self._files()[sha256]))

    def __contains__(self, sha256: object) -> bool:
        return sha256 in self._files()

    def __iter__(self) -> Iterator[str]:
        return iter(self._files())

    def __len__(self) -> int:
        return len(self._files())


def _under(path: str, removed: set[str]) -> bool:
    """Whether ``path`` is one of ``removed`` or lies in a directory among them."""
    return any(path == p or path.startswith(p + "/") for p in removed)


def _any_under(paths: set[str], removed: str) -> bool:
    return any(_under(path, {removed}) for path in paths)


def _check_link(full: Path, base: Path, real_base: Path, symlinks: SymlinkPolicy) -> None:
    target = full.resolve()
    if symlinks == "reject":
        raise InvalidNameError(f"{full} is a symlink: pass symlinks='content' to store its target's bytes")
    if not target.is_relative_to(real_base):
        raise InvalidNameError(
            f"{full} links outside {base} (to {target}): copy the file in or remove the link"
        )
    if target.is_dir():
        raise InvalidNameError(f"{full} links to a directory: add that directory itself instead")
    if not target.exists():
        raise InvalidNameError(f"{full} is a dangling link (to {target}): fix or remove it")


def _walk(base: Path) -> Iterator[tuple[os.DirEntry[str], str]]:
    """Everything under ``base`` (made absolute) with its path relative to it, as ``os.walk`` would list it
    (links to directories listed, not followed), from one ``scandir`` per directory: a tree of
    thousands of files costs no ``Path`` object and no extra ``stat`` per entry."""
    stack = [(os.path.abspath(base), "")]
    while stack:
        directory, rel_dir = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = rel_dir + entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                yield entry, rel
