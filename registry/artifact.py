"""``Artifact``: build one (files, metadata), log it through a run, then read and download it.

A draft holds local files and their hashes; logging binds it to a version record in a
store. The same object then answers ``version``, ``digest``, ``download()`` and friends.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from .download import DownloadReport, materialize, safe_destination
from .errors import IntegrityError, InvalidNameError, NotFoundError, RegistryError
from .hashing import sha256_file
from .jsonable import to_jsonable
from .names import validate_name, validate_path, validate_path_set
from .records import FileEntry, FileList, VersionRecord

if TYPE_CHECKING:
    from .api import ApiRun
    from .store import Store

SymlinkPolicy = Literal["content", "reject"]
logger = logging.getLogger("registry")


class ArtifactFile:
    """One file of a logged artifact (W&B's manifest entry)."""

    def __init__(self, artifact: "Artifact", entry: FileEntry) -> None:
        self._artifact = artifact
        self.path = entry.path
        self.size = entry.size
        self.digest = entry.sha256
        self._entry = entry

    def download(self, root: str | os.PathLike | None = None) -> str:
        """Download just this file; returns its local path."""
        target = self._artifact._root(root)
        self._artifact._materialize([self._entry], target)
        return str(target / self.path)

    def __repr__(self) -> str:
        return f"ArtifactFile({self.path!r}, size={self.size})"


class Artifact:
    """A versioned set of files with a type, description and metadata.

    >>> art = Artifact("mnist-raw", type="dataset", metadata={"sizes": [50000, 10000]})
    >>> with art.new_file("notes.txt") as f:
    ...     _ = f.write("hello")
    """

    def __init__(self, name: str, type: str, description: str | None = None, metadata: dict | None = None) -> None:
        self.name = validate_name(name, "artifact name")
        self.type = validate_name(type, "artifact type")
        self.description = description
        self.metadata: dict[str, Any] = to_jsonable(dict(metadata or {}), "metadata")
        self._pending: dict[str, tuple[Path, str, int]] = {}
        self._staging: tempfile.TemporaryDirectory | None = None
        self._store: Store | None = None
        self._record: VersionRecord | None = None
        self._files: FileList | None = None
        self._aliases: list[str] | None = None
        self.created: bool | None = None
        """After logging: False when the contents equalled the latest version (no new version)."""

    # -- building --------------------------------------------------------------------------
    def _check_draft(self) -> None:
        if self._record is not None:
            raise RegistryError(f"{self.qualified_name} is already logged and cannot change: build a new Artifact")

    @contextmanager
    def new_file(self, name: str, mode: str = "w", encoding: str | None = None) -> Iterator[IO]:
        """Write a file straight into the artifact."""
        self._check_draft()
        path = validate_path(name)
        if self._staging is None:
            self._staging = tempfile.TemporaryDirectory(prefix="registry-artifact-")
        staged = Path(self._staging.name) / f"{len(os.listdir(self._staging.name))}"
        with open(staged, mode, encoding=encoding if "b" not in mode else None) as handle:
            yield handle
        self.add_file(staged, path)

    def add_file(self, local_path: str | os.PathLike, name: str | None = None) -> ArtifactFile | None:
        """Add a local file under ``name`` (default: its file name)."""
        self._check_draft()
        source = Path(local_path)
        if not source.is_file():
            raise NotFoundError(f"cannot add {source}: no such file")
        path = validate_path(name if name is not None else source.name)
        self._add_many({path: source})
        return None

    def add_dir(self, local_path: str | os.PathLike, name: str | None = None, *, symlinks: SymlinkPolicy = "content") -> None:
        """Add every file under a directory, under ``name/`` if given.

        Symlinked files inside the tree are stored by content (or refused with
        ``symlinks="reject"``); a link leading out of the tree is always refused.
        """
        self._check_draft()
        base = Path(local_path)
        if not base.is_dir():
            raise NotFoundError(f"cannot add {base}: no such directory")
        prefix = validate_path(name) + "/" if name else ""
        real_base = base.resolve()
        found: dict[str, Path] = {}
        for entry_path, rel, is_file, is_link in _walk(base):
            full = Path(entry_path)
            if is_link:
                target = full.resolve()
                if symlinks == "reject":
                    raise InvalidNameError(f"{full} is a symlink: pass symlinks='content' to store its target's bytes")
                if not target.is_relative_to(real_base):
                    raise InvalidNameError(f"{full} links outside {base} (to {target}): copy the file in or remove the link")
                if target.is_dir():
                    raise InvalidNameError(f"{full} links to a directory: add that directory itself instead")
                if not target.exists():
                    raise InvalidNameError(f"{full} is a dangling link (to {target}): fix or remove it")
            if is_file:
                found[validate_path(prefix + rel)] = full
        self._add_many(found)

    def _add_many(self, files: dict[str, Path]) -> None:
        from .store import local_hash_state

        paths = list(files)
        hashes = local_hash_state().hash_files([files[p] for p in paths])
        validate_path_set(list(self._pending) + [p for p in paths if p not in self._pending])
        for path, (sha, size) in zip(paths, hashes):
            previous = self._pending.get(path)
            if previous and previous[1] != sha:
                raise InvalidNameError(f"{path!r} was already added with different contents: remove it first or choose another name")
            self._pending[path] = (files[path], sha, size)

    def remove(self, name: str) -> None:
        """Remove a file, or every file under a directory, from a draft."""
        self._check_draft()
        path = validate_path(name)
        doomed = [p for p in self._pending if p == path or p.startswith(path + "/")]
        if not doomed:
            raise NotFoundError(f"{path!r} is not in artifact {self.name}")
        for p in doomed:
            del self._pending[p]

    def _draft_entries(self) -> tuple[list[FileEntry], dict[str, Path]]:
        entries = [FileEntry(path=p, sha256=sha, size=size) for p, (_, sha, size) in self._pending.items()]
        return entries, {sha: src for src, sha, _ in self._pending.values()}

    # -- binding ---------------------------------------------------------------------------
    @classmethod
    def _from_record(cls, store: Store, record: VersionRecord, aliases: list[str] | None = None) -> "Artifact":
        art = cls.__new__(cls)
        Artifact.__init__(art, record.name, record.type, record.description, record.metadata)
        art._bind(store, record, aliases)
        return art

    def _bind(self, store: Store, record: VersionRecord, aliases: list[str] | None) -> None:
        self._store, self._record, self._aliases = store, record, aliases
        self.metadata = dict(record.metadata)
        self.description = record.description
        if self._staging is not None:
            self._staging.cleanup()
            self._staging = None
        self._pending = {}

    def _logged(self) -> tuple[Store, VersionRecord]:
        if self._record is None or self._store is None:
            raise RegistryError(f"artifact {self.name!r} is not logged yet: call run.log_artifact(artifact) first")
        return self._store, self._record

    # -- logged properties -----------------------------------------------------------------
    @property
    def project(self) -> str:
        return self._logged()[1].project

    @property
    def version(self) -> str:
        return f"v{self._logged()[1].version}"

    @property
    def digest(self) -> str:
        return self._logged()[1].digest

    @property
    def aliases(self) -> list[str]:
        """Read on first use, so resolving and downloading never pay for listing aliases."""
        store, record = self._logged()
        if self._aliases is None:
            from .versions import aliases_of

            self._aliases = aliases_of(store.backend, record.project, record.name).get(record.version, [])
        return list(self._aliases)

    @property
    def qualified_name(self) -> str:
        record = self._logged()[1]
        return f"{record.project}/{record.name}:v{record.version}"

    @property
    def size(self) -> int:
        if self._record is None:
            return sum(size for _, _, size in self._pending.values())
        return self._record.size

    @property
    def file_count(self) -> int:
        return self._logged()[1].file_count

    @property
    def created_at(self) -> datetime:
        return self._logged()[1].created_at

    @property
    def commit_id(self) -> str:
        return self._logged()[1].commit_id

    @property
    def record(self) -> VersionRecord:
        return self._logged()[1]

    def file_list(self) -> FileList:
        if self._files is None:
            from .filelists import read_file_list

            store, record = self._logged()
            self._files = read_file_list(store, record)
        return self._files

    def files(self) -> list[ArtifactFile]:
        if self._record is None:
            entries, _ = self._draft_entries()
            return [ArtifactFile(self, e) for e in sorted(entries, key=lambda e: e.path)]
        return [ArtifactFile(self, e) for e in self.file_list().files]

    def get_entry(self, path: str) -> ArtifactFile:
        entry = self.file_list().by_path().get(validate_path(path))
        if entry is None:
            raise NotFoundError(f"{path!r} is not a file of {self.qualified_name}: list files with artifact.files()")
        return ArtifactFile(self, entry)

    # -- downloading -----------------------------------------------------------------------
    def _root(self, root: str | os.PathLike | None) -> Path:
        return Path(root) if root is not None else Path("artifacts") / f"{self.name}:{self.version}"

    def _materialize(self, files: list[FileEntry], root: Path, *, clean: bool = False, overwrite: bool = True,
                     progress=None) -> DownloadReport:
        store, _ = self._logged()
        try:
            report = materialize(store.cache, store.hashes, files, root, workers=store.settings.workers, clean=clean,
                                 overwrite=overwrite, progress=progress)
        finally:
            store.cache.clean()  # REGISTRY_CACHE_MAX (if set): evict least recently used entries
        if report.restored:
            logger.warning("restored %d locally edited file(s) in %s to %s: %s", len(report.restored), root,
                           self.qualified_name, ", ".join(report.restored[:5]) + (" ..." if len(report.restored) > 5 else ""))
        return report

    def pull(self, root: str | os.PathLike | None = None, *, path_prefix: str | None = None, clean: bool = False,
             overwrite: bool = True, progress=None) -> DownloadReport:
        """``download``, returning what it did: files placed, unchanged, restored and extra, and
        the bytes that came from the store, the cache and files already on this machine.

        >>> report = artifact.pull("./model", overwrite=False)   # doctest: +SKIP
        >>> report.fetched_bytes, report.unchanged                # doctest: +SKIP
        """
        files = list(self.file_list().files)
        if path_prefix:
            files = [f for f in files if f.path.startswith(path_prefix)]
        return self._materialize(files, self._root(root), clean=clean, overwrite=overwrite, progress=progress)

    def download(self, root: str | os.PathLike | None = None, path_prefix: str | None = None, *, clean: bool = False,
                 overwrite: bool = True, progress=None) -> str:
        """Download into ``root`` (default ``./artifacts/<name>:v<N>``); returns the directory.

        Files already there are left alone, files shared with anything fetched before come
        from the local cache. A file edited locally gets the version's bytes back, as in W&B,
        and a warning lists it; ``overwrite=False`` raises ``LocalEditsError`` instead, before
        anything is written. ``clean=True`` removes files the version does not hold.
        """
        return str(self.pull(root, path_prefix=path_prefix, clean=clean, overwrite=overwrite, progress=progress).root)

    def file(self, root: str | os.PathLike | None = None) -> str:
        """Download a single-file artifact; returns the file's path."""
        files = self.file_list().files
        if len(files) != 1:
            raise RegistryError(f"{self.qualified_name} holds {len(files)} files, not one: use download() instead")
        return self.get_entry(files[0].path).download(root)

    def verify(self, root: str | os.PathLike | None = None) -> None:
        """Re-hash a download (or, without ``root``, the cached blobs) against this version."""
        store, _ = self._logged()
        bad = []
        for entry in self.file_list().files:
            if root is None:
                if not store.cache.entry_path(entry.sha256).exists():
                    raise IntegrityError(f"{entry.path!r} of {self.qualified_name} is not in the cache: download it first, or verify a directory")
                if not store.cache.verify_entry(entry.sha256):
                    bad.append(entry.path)
                continue
            dest = safe_destination(Path(root), entry.path)
            if not dest.is_file() or sha256_file(dest) != entry.sha256:
                bad.append(entry.path)
        if bad:
            where = root if root is not None else "the cache"
            raise IntegrityError(f"{len(bad)} file(s) of {self.qualified_name} in {where} do not match: {', '.join(bad[:5])}; download again")

    def wait(self) -> "Artifact":
        """For W&B compatibility: logging here is synchronous, so the artifact is already committed."""
        self._logged()
        return self

    # -- lineage ---------------------------------------------------------------------------
    def logged_by(self) -> "ApiRun | None":
        from .api import Api

        store, record = self._logged()
        if record.created_by is None:
            return None
        return Api(store=store).run(f"{record.created_by.project}/{record.created_by.id}")

    def used_by(self) -> list["ApiRun"]:
        from .api import Api

        store, record = self._logged()
        return Api(store=store).used_by(record)

    def __repr__(self) -> str:
        if self._record is None:
            return f"<Artifact {self.name} (draft, {len(self._pending)} files)>"
        return f"<Artifact {self.qualified_name} {self.type}>"


def _walk(base: Path) -> Iterator[tuple[str, str, bool, bool]]:
    """(path, path relative to ``base``, is a file, is a symlink) of everything under ``base``.

    Like ``os.walk`` (links to directories are listed, not followed) but from one ``scandir``
    per directory, so a tree of thousands of files costs no extra ``stat`` per entry.
    """
    stack = [(str(base), "")]
    while stack:
        directory, rel_dir = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = rel_dir + entry.name
                is_link, is_dir = entry.is_symlink(), entry.is_dir()
                if is_dir and not is_link:
                    stack.append((entry.path, rel + "/"))
                yield entry.path, rel, not is_dir, is_link
