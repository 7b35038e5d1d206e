"""``Artifact``: W&B's one object for both sides of a version.

Built, it holds an ``ArtifactDraft`` (files and their hashes); once ``Run.log_artifact`` has
committed it (or ``Api`` has opened a version), it is the handle of that version in a store
and answers ``version``, ``digest``, ``download()`` and friends.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .api_run import ApiRun
from .artifact_state import VersionState
from .download import DownloadReport, Prefetch, materialize
from .download_root import safe_destination
from .draft import ArtifactDraft, SymlinkPolicy
from .errors import IntegrityError, InvalidNameError, NotFoundError, RegistryError
from .filelists import read_file_list, version_entries
from .hashing import sha256_file
from .jsonable import to_jsonable
from .names import validate_name, validate_path
from .pack_reader import PackedReader
from .records import ArtifactRef, FileEntry, FileList, VersionRecord
from .references import find_references, place_references, source_matches, staged
from .run_records import read_run, users_of
from .settings import Settings
from .store import local_hash_state
from .versions import aliases_of, read_version

if TYPE_CHECKING:
    from .store import Store

logger = logging.getLogger("registry")


class ArtifactFile:
    """One file of an artifact (W&B's manifest entry)."""

    def __init__(self, artifact: Artifact, entry: FileEntry) -> None:
        self.artifact = artifact
        self.entry = entry
        self.path, self.size, self.digest = entry.path, entry.size, entry.sha256
        self.ref: str | None = entry.ref.uri if entry.ref is not None else None
        """The source URI of a reference (``add_reference``); None for a file held in the store."""

    def download(self, root: str | os.PathLike | None = None) -> str:
        """Download just this file; returns its local path."""
        return str(self.artifact.pull(root, paths=[self.path]).root / self.path)

    def __repr__(self) -> str:
        return f"ArtifactFile({self.path!r}, size={self.size})"


class Artifact(VersionState):
    """A versioned set of files with a type, description and metadata.

    >>> art = Artifact("mnist-raw", type="dataset", metadata={"sizes": [50000, 10000]})
    >>> with art.new_file("notes.txt") as f:
    ...     _ = f.write("hello")
    """

    def __init__(self, name: str, type: str, description: str | None = None,
                 metadata: dict | None = None, incremental: bool = False) -> None:
        """``incremental=True``: the new version is the latest one plus this draft's files, less
        what it ``remove``s; nothing of the latest version is downloaded or uploaded again."""
        self.name = validate_name(name, "artifact name")
        self.type = validate_name(type, "artifact type")
        self._store: Store | None = None
        self._record: VersionRecord | None = None
        self._description = description
        self._metadata: dict[str, Any] = to_jsonable(dict(metadata or {}), "metadata")
        self._draft: ArtifactDraft | None = ArtifactDraft(incremental=incremental)
        self._files: FileList | None = None
        self._aliases: list[str] | None = None
        self._aliases_seen: tuple[str, ...] = ()
        self.created: bool | None = None
        """After logging: False when the contents equalled the latest version (no new version)."""

    @classmethod
    def from_record(cls, store: Store, record: VersionRecord, aliases: list[str] | None = None) -> Artifact:
        """The handle of a committed version (``aliases`` when already known, else read on first use)."""
        artifact = cls(record.name, record.type, record.description, record.metadata)
        artifact.attach(store, record, aliases)
        return artifact

    @classmethod
    def from_ref(cls, store: Store, ref: ArtifactRef) -> Artifact:
        return cls.from_record(store, read_version(store.backend, ref.project, ref.name, ref.version))

    def attach(self, store: Store, record: VersionRecord, aliases: list[str] | None = None,
               created: bool | None = None) -> None:
        """Become the handle of ``record`` (what ``Run.log_artifact`` does once it has committed the
        draft)."""
        if self._draft is not None:
            self._draft.close()
        self._draft = None
        self._store, self._record, self.created = store, record, created
        self._aliases = list(aliases) if aliases is not None else None
        self._aliases_seen = tuple(self._aliases or ())
        self.reset_state(record)
        if self._wanted_ttl is not False:  # a TTL set on the draft is the version's from the start
            self.save()

    # -- building --------------------------------------------------------------------------
    @property
    def draft(self) -> ArtifactDraft:
        """The files being gathered; an error once logged (a version never changes)."""
        if self._draft is None:
            raise RegistryError(
                f"{self.qualified_name} is already logged and cannot change: build a new Artifact"
            )
        return self._draft

    def new_file(self, name: str, mode: str = "w", encoding: str | None = None) -> AbstractContextManager[IO]:
        """Write a file straight into the artifact."""
        return self.draft.new_file(name, mode, encoding)

    def add_file(self, local_path: str | os.PathLike, name: str | None = None) -> None:
        """Add a local file under ``name`` (default: its file name)."""
        self.draft.add_file(local_path, name)

    def add_dir(self, local_path: str | os.PathLike, name: str | None = None, *,
                symlinks: SymlinkPolicy = "content") -> None:
        """Add every file under a directory, under ``name/`` if given (see ``ArtifactDraft.add_dir``)."""
        self.draft.add_dir(local_path, name, symlinks=symlinks)

    def remove(self, name: str) -> None:
        """Remove a file, or every file under a directory, from a draft."""
        self.draft.remove(name)

    def add_reference(self, uri: str, name: str | None = None, checksum: bool = True,
                      max_objects: int | None = None) -> list[ArtifactFile]:
        """List files that stay where they are (``s3://``, ``file://``, ``http(s)://``) in this artifact.

        Nothing is copied into the store: the version records each file's ETag, size, VersionId
        (versioned buckets) or modification time and, with ``checksum``, its sha256 (the content
        is read once, now). ``download()`` fetches from the source and checks it against the
        record. A prefix or directory adds each object under it, at most ``max_objects``
        (default 10,000,000); more is an error, never a truncation.

        >>> art.add_reference("s3://raw-data/mnist/", name="mnist")          # doctest: +SKIP
        >>> art.add_reference("https://example.org/labels.csv", checksum=False)  # doctest: +SKIP
        """
        if not isinstance(uri, str):
            raise InvalidNameError("add_reference takes a URI string (s3://, file://, http(s)://)")
        entries = find_references(uri, name, checksum, max_objects, Settings.from_env(), local_hash_state())
        self.draft.add_references(entries)
        return [ArtifactFile(self, e) for e in entries]

    @property
    def incremental(self) -> bool:
        return self._draft is not None and self._draft.incremental

    def new_draft(self) -> Artifact:
        """A draft of the next version, starting from this one's files (W&B's ``new_draft``).

        Nothing is downloaded: the files stay in the store, and only what is added is uploaded.

        >>> draft = Api().artifact("proj/dataset:latest").new_draft()   # doctest: +SKIP
        >>> draft.add_file("extra.csv"); draft.remove("old.csv")        # doctest: +SKIP
        >>> run.log_artifact(draft)                                      # doctest: +SKIP
        """
        record = self.record
        draft = Artifact(record.name, record.type, record.description, dict(record.metadata))
        draft.draft.keep(list(self.file_list().files))
        return draft

    # -- the logged version ----------------------------------------------------------------
    def _logged(self) -> tuple[Store, VersionRecord]:
        if self._record is None or self._store is None:
            raise RegistryError(
                f"artifact {self.name!r} is not logged yet: call run.log_artifact(artifact) first"
            )
        return self._store, self._record

    @property
    def record(self) -> VersionRecord:
        return self._logged()[1]

    @property
    def project(self) -> str:
        return self.record.project

    @property
    def version(self) -> str:
        return f"v{self.record.version}"

    @property
    def digest(self) -> str:
        return self.record.digest

    @property
    def qualified_name(self) -> str:
        record = self.record
        return f"{record.project}/{record.name}:v{record.version}"

    @property
    def aliases(self) -> list[str]:
        """Read on first use, so resolving and downloading never pay for listing aliases. As in
        W&B, the list may be changed (``artifact.aliases.append("prod")``) or replaced, and
        ``save()`` applies what changed since it was read."""
        store, record = self._logged()
        if self._aliases is None:
            found = aliases_of(store.backend, record.project, record.name).get(record.version, [])
            self._aliases = list(found)
            self._aliases_seen = tuple(self._aliases)
        return self._aliases

    @aliases.setter
    def aliases(self, aliases: list[str]) -> None:
        self.aliases  # noqa: B018 - read first: save() applies the difference from what was read
        self._aliases = list(aliases)

    def alias_changes(self) -> tuple[list[str], list[str]]:
        """(added, removed) user aliases since they were read; ``latest`` is the registry's."""
        wanted = [a for a in dict.fromkeys(self._aliases or ()) if a != "latest"]
        seen = [a for a in self._aliases_seen if a != "latest"]
        if self._aliases is None:
            return [], []
        return [a for a in wanted if a not in seen], [a for a in seen if a not in wanted]

    def reset_aliases(self) -> None:
        self._aliases, self._aliases_seen = None, ()

    @property
    def size(self) -> int:
        return self._draft.size if self._draft is not None else self.record.size

    @property
    def file_count(self) -> int:
        return self.record.file_count

    @property
    def created_at(self) -> datetime:
        return self.record.created_at

    @property
    def commit_id(self) -> str:
        return self.record.commit_id

    def file_list(self) -> FileList:
        if self._files is None:
            self._files = read_file_list(*self._logged())
        return self._files

    def files(self, names: list[str] | None = None, per_page: int = 50) -> list[ArtifactFile]:
        """The files, sorted by path (only ``names`` if given). ``per_page`` is accepted for W&B
        compatibility: the whole file list is one object here, so there is nothing to page."""
        if self._draft is not None:
            entries = sorted(self._draft.entries(), key=lambda e: e.path)
        else:
            entries = list(self.file_list().files)
        if names is not None:
            wanted = set(names)
            entries = [e for e in entries if e.path in wanted]
        return [ArtifactFile(self, e) for e in entries]

    def iter_entries(self, path_prefix: str | None = None) -> Iterator[FileEntry]:
        """A logged version's file entries whose paths start with ``path_prefix``, streamed in
        manifest order: a format-2 version reads only the pages that can hold them."""
        if self._files is not None or not self.record.paged:
            return (f for f in self.file_list().files if not path_prefix or f.path.startswith(path_prefix))
        return version_entries(*self._logged(), path_prefix or None)

    def first_files(self, limit: int | None = None) -> list[ArtifactFile]:
        """The first ``limit`` files (all with None), reading no more of a format-2 manifest than
        they need (in its path order: component by component); ``files()`` for the sorted whole."""
        if self._draft is not None or self._files is not None or limit is None:
            return self.files()[:limit]
        store, record = self._logged()
        return [ArtifactFile(self, e) for e in islice(version_entries(store, record), limit)]

    def get_path(self, name: str) -> ArtifactFile:
        """W&B's older name for ``get_entry``."""
        return self.get_entry(name)

    def get_entry(self, path: str) -> ArtifactFile:
        entry = self.file_list().by_path().get(validate_path(path))
        if entry is None:
            raise NotFoundError(
                f"{path!r} is not a file of {self.qualified_name}: list files with artifact.files()"
            )
        return ArtifactFile(self, entry)

    # -- downloading -----------------------------------------------------------------------
    def default_root(self) -> Path:
        """Where ``download()`` puts files without a ``root``: ``./artifacts/<name>:v<N>``."""
        return Path("artifacts") / f"{self.name}:{self.version}"

    def pull(self, root: str | os.PathLike | None = None, *, path_prefix: str | None = None,
             paths: Iterable[str] | None = None, clean: bool = False, overwrite: bool = True,
             progress=None, allow_missing_references: bool = False) -> DownloadReport:
        """``download``, returning what it did: files placed, unchanged, restored (edited locally,
        overwritten: the caller reports them) and extra, and the bytes that came from the store,
        the cache and files already on this machine.

        >>> report = artifact.pull("./model", overwrite=False)   # doctest: +SKIP
        >>> report.fetched_bytes, report.unchanged                # doctest: +SKIP
        """
        store, record = self._logged()
        if self._files is None and record.paged:  # format 2: read only the pages under the prefix
            files = _select(version_entries(store, record, path_prefix or None), None, paths)
        else:
            files = _select(self.file_list().files, path_prefix, paths)
        target = Path(root) if root is not None else self.default_root()
        stored = [f for f in files if f.ref is None]
        refs = [f for f in files if f.ref is not None]
        try:
            with staged(refs, target, store.settings, store.hashes, overwrite, progress,
                        allow_missing=allow_missing_references) as references:
                report = materialize(store.cache, store.hashes, stored, target,
                                     workers=store.settings.workers, clean=clean and not refs,
                                     overwrite=overwrite, progress=progress, prefetch=self._prefetch(store))
                if refs:
                    place_references(report, references, store.hashes, clean)
        finally:
            store.cache.clean()  # REGISTRY_CACHE_MAX (if set): evict least recently used entries
        return report

    def _prefetch(self, store: Store) -> Prefetch | None:
        """A remote store: fetch the files held in packs (format 2, or migrated) in bulk."""
        record = self.record
        if store.cache.is_store:
            return None
        reader = PackedReader(store.backend, store.pack_indexes, store.cache)
        hints = record.packs or ()
        return lambda entries, progress, copies: reader.fetch(entries, hints, progress, copies)

    def download(self, root: str | os.PathLike | None = None, path_prefix: str | None = None, *,
                 clean: bool = False, overwrite: bool = True, progress=None,
                 allow_missing_references: bool = False) -> str:
        """Download into ``root`` (default ``./artifacts/<name>:v<N>``); returns the directory.

        Files already there are left alone, files shared with anything fetched before come
        from the local cache. A file edited locally gets the version's bytes back, as in W&B,
        and a warning lists it; ``overwrite=False`` raises ``LocalEditsError`` instead, before
        anything is written. ``clean=True`` removes files the version does not hold. A
        reference whose source is gone is ``NotFoundError``, or with ``allow_missing_references``
        skipped with a warning.
        """
        report = self.pull(root, path_prefix=path_prefix, clean=clean, overwrite=overwrite, progress=progress,
                           allow_missing_references=allow_missing_references)
        if report.restored:  # the caller gets a path, not the report: say it here
            shown = ", ".join(report.restored[:5]) + (" ..." if len(report.restored) > 5 else "")
            logger.warning("restored %d locally edited file(s) in %s to %s: %s", len(report.restored),
                           report.root, self.qualified_name, shown)
        return str(report.root)

    def checkout(self, root: str | os.PathLike | None = None) -> str:
        """Make ``root`` hold exactly this version: download, and delete files it does not hold."""
        return str(self.pull(root, clean=True).root)

    def file(self, root: str | os.PathLike | None = None) -> str:
        """Download a single-file artifact; returns the file's path."""
        files = self.file_list().files
        if len(files) != 1:
            raise RegistryError(
                f"{self.qualified_name} holds {len(files)} files, not one: use download() instead"
            )
        return self.get_entry(files[0].path).download(root)

    def verify(self, root: str | os.PathLike | None = None) -> None:
        """Re-hash a download (or, without ``root``, the cached blobs) against this version."""
        bad = [entry.path for entry in self.file_list().files if not self._verify_entry(entry, root)]
        if bad:
            where = root if root is not None else "the cache"
            raise IntegrityError(
                f"{len(bad)} file(s) of {self.qualified_name} in {where} do not match: "
                f"{', '.join(bad[:5])}; download again"
            )

    def _verify_entry(self, entry: FileEntry, root: str | os.PathLike | None) -> bool:
        if root is not None:
            dest = safe_destination(Path(root), entry.path)
            if entry.ref is not None and not entry.ref.checksum:  # only its size was recorded
                return dest.is_file() and dest.stat().st_size == entry.size
            return dest.is_file() and sha256_file(dest) == entry.sha256
        store = self._logged()[0]
        if entry.ref is not None:  # not in the cache: check the source itself
            return source_matches(entry, store.settings, store.hashes)
        cache = store.cache
        if not cache.entry_path(entry.sha256).exists():
            raise IntegrityError(
                f"{entry.path!r} of {self.qualified_name} is not in the cache: "
                "download it first, or verify a directory"
            )
        return cache.verify_entry(entry.sha256)

    def wait(self) -> Artifact:
        """For W&B compatibility: logging here is synchronous, so the artifact is already committed."""
        self._logged()
        return self

    # -- lineage ---------------------------------------------------------------------------
    def logged_by(self) -> ApiRun | None:
        """The run that logged this version (``NotFoundError`` if its record is gone)."""
        store, record = self._logged()
        if record.created_by is None:
            return None
        return ApiRun(store, read_run(store.backend, record.created_by.project, record.created_by.id),
                      partial(Artifact.from_ref, store))

    def used_by(self) -> list[ApiRun]:
        """The runs that declared this version as an input."""
        store, record = self._logged()
        return [ApiRun(store, run, partial(Artifact.from_ref, store))
                for run in users_of(store.backend, record, store.settings.workers)]

    def __repr__(self) -> str:
        if self._draft is not None:
            return f"<Artifact {self.name} (draft, {len(self._draft)} files)>"
        return f"<Artifact {self.qualified_name} {self.type}>"


def _select(files: Iterable[FileEntry], path_prefix: str | None,
            paths: Iterable[str] | None) -> list[FileEntry]:
    selected = list(files)
    if path_prefix:
        selected = [f for f in selected if f.path.startswith(path_prefix)]
    if paths is not None:
        wanted = set(paths)
        selected = [f for f in selected if f.path in wanted]
    return selected

