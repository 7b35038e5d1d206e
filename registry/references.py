"""External references (W&B's ``Artifact.add_reference``): files listed in a version that stay
where they are, in another bucket, on a shared filesystem or behind a URL.

Logging records, per file, what the source said (``Reference``: ETag, VersionId, modification
time, size and, with ``checksum=True``, the content's sha256) in the version's file list, so
the version's digest covers them; nothing is copied into the store. Downloading fetches each
file from its source into a temp file beside its destination, checks it against the record,
and only then renames it into place: a source that changed since logging raises
``IntegrityError`` naming the file, and leaves the download root as it was.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .download import DownloadReport
from .download_root import safe_destination
from .errors import IntegrityError, InvalidNameError, LocalEditsError, NotFoundError
from .hashing import HashState
from .records import FileEntry
from .reference_entries import DEFAULT_MAX_OBJECTS, Source, check_fetched, hash_stream, to_entry
from .reference_file import FileSource
from .settings import Settings
from .tempnames import temp_beside

logger = logging.getLogger("registry")
SCHEMES = ("s3", "file", "http", "https")
Progress = Callable[[int, int], None]
"""As a download's: called with (bytes, 0) as each reference arrives (or is found in place)."""


class Sources:
    """The source for each URI's scheme, made once per operation (an S3 source keeps its clients)."""

    def __init__(self, settings: Settings, hashes: HashState) -> None:
        self.settings, self.hashes = settings, hashes
        self._made: dict[str, Source] = {}
        self._lock = threading.Lock()

    def __call__(self, uri: str) -> Source:
        scheme = urlparse(uri).scheme
        with self._lock:  # downloads ask from many threads
            if scheme not in self._made:
                self._made[scheme] = source_for(uri, self.settings, self.hashes)
            return self._made[scheme]


def source_for(uri: str, settings: Settings, hashes: HashState) -> Source:
    """The source that reads ``uri``'s scheme (S3 clients are made only when an s3:// URI comes)."""
    scheme = urlparse(uri).scheme
    if scheme == "s3":
        from .reference_s3 import S3Source  # botocore costs ~0.1 s to import: only S3 references pay it

        return S3Source(settings.reference_endpoints, settings.workers)
    if scheme == "file":
        return FileSource(hashes)
    if scheme in ("http", "https"):
        from .reference_http import HttpSource  # urllib.request and ssl cost ~25 ms to import

        return HttpSource()
    raise InvalidNameError(
        f"cannot reference {uri!r}: scheme {scheme or '(none)'!r} is not one of {', '.join(SCHEMES)} "
        "(a local path is file:///absolute/path)"
    )


def find_references(uri: str, name: str | None, checksum: bool, max_objects: int | None,
                    settings: Settings, hashes: HashState) -> list[FileEntry]:
    """The file-list entries ``uri`` expands to (one per object; a prefix or directory gives many)."""
    if max_objects is not None and max_objects < 1:
        raise InvalidNameError(f"max_objects must be at least 1, not {max_objects}")
    found = source_for(uri, settings, hashes).find(uri, name, checksum, max_objects or DEFAULT_MAX_OBJECTS)
    return [to_entry(f) for f in found]


def source_matches(entry: FileEntry, settings: Settings, hashes: HashState) -> bool:
    """Whether the source still holds what was logged (its bytes are read and checked)."""
    assert entry.ref is not None
    try:
        with source_for(entry.ref.uri, settings, hashes).open(entry) as stream:
            sha256, size = hash_stream(stream)
        check_fetched(entry, sha256, size)
    except IntegrityError:
        return False
    return True


@dataclass
class StagedReferences:
    """References fetched and verified into temp files beside their destinations, not yet placed."""

    root: Path
    paths: set[str] = field(default_factory=set)
    """Every reference of the download, placed or not."""
    temps: dict[str, tuple[Path, Path, str]] = field(default_factory=dict)
    """Artifact path -> (temp file, destination, sha256 of its bytes)."""
    unchanged: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """References whose source is gone, skipped (only with ``allow_missing``)."""
    copied: list[int] = field(default_factory=list)
    """Sizes of the references copied, verified, from files on this machine instead of fetched."""

    def place(self, hashes: HashState) -> list[str]:
        """Rename every fetched file into place; returns their paths."""
        placed, rows = [], []
        for path, (temp, dest, sha256) in self.temps.items():
            os.replace(temp, dest)
            rows.append((dest.absolute(), os.stat(dest), sha256))
            placed.append(path)
        self.temps.clear()
        hashes.remember(rows)
        return placed

    def discard(self) -> None:
        for temp, _, _ in self.temps.values():
            temp.unlink(missing_ok=True)
        self.temps.clear()


@contextmanager
def staged(entries: list[FileEntry], root: Path, settings: Settings, hashes: HashState,
           overwrite: bool = True, progress: Progress | None = None,
           allow_missing: bool = False) -> Iterator[StagedReferences]:
    """Fetch and verify ``entries`` (references) for ``root``; what is not placed in the block is
    removed. A destination holding other bytes is a local edit: ``LocalEditsError`` unless
    ``overwrite``, before anything is placed. A source that is gone is ``NotFoundError``, or
    with ``allow_missing`` (W&B's ``allow_missing_references``) listed in ``missing`` and skipped."""
    stage = StagedReferences(Path(root), {e.path for e in entries})
    try:
        targets = [(e, safe_destination(stage.root, e.path)) for e in entries]
        current = _current(targets, hashes)
        todo = [(e, dest) for e, dest in targets if e.path not in current]
        stage.unchanged = sorted(current)
        if progress:
            progress(sum(e.size for e, _ in targets if e.path in current), 0)
        _fetch_all(stage, todo, Sources(settings, hashes), settings.workers, progress, allow_missing)
        _sort_out_existing(stage, todo, hashes)
        if stage.restored and not overwrite:
            raise LocalEditsError(stage.root, stage.restored)
        yield stage
    finally:
        stage.discard()


def place_references(report: DownloadReport, stage: StagedReferences, hashes: HashState, clean: bool) -> None:
    """Place the staged references and count them in the download's ``report`` (whose files
    were placed without them); with ``clean``, remove what neither holds."""
    report.placed += stage.place(hashes)
    report.unchanged = sorted(report.unchanged + stage.unchanged)
    report.restored += stage.restored
    report.local_bytes += sum(stage.copied)
    report.extra = [p for p in report.extra if p not in stage.paths]
    if stage.missing:
        logger.warning("skipped %d reference(s) whose source is gone: %s", len(stage.missing),
                       ", ".join(sorted(stage.missing)[:5]))
    if clean:
        for path in report.extra:
            (report.root / path).unlink()
            report.removed.append(path)


def _current(targets: list[tuple[FileEntry, Path]], hashes: HashState) -> set[str]:
    """Checksummed references whose destination already holds the logged bytes (nothing to fetch)."""
    known = [(e, dest) for e, dest in targets if e.ref is not None and e.ref.checksum and dest.is_file()]
    sums = hashes.hash_files([dest for _, dest in known]) if known else []
    return {e.path for (e, _), (sha, _) in zip(known, sums) if sha == e.sha256}


def _fetch_all(stage: StagedReferences, todo: list[tuple[FileEntry, Path]], sources: Sources,
               workers: int, progress: Progress | None, allow_missing: bool) -> None:
    """Each reference into a temp file beside its destination: copied from a file on this machine
    known to hold its checksummed bytes (verified on the way), else fetched from its source."""
    copies = _local_copies(todo, sources.hashes)

    def fetch(target: tuple[FileEntry, Path]) -> None:
        entry, dest = target
        assert entry.ref is not None
        dest.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_beside(dest)
        stage.temps[entry.path] = (temp, dest, "")
        if entry.sha256 in copies and _copy_verified(copies[entry.sha256], temp, entry):
            stage.temps[entry.path] = (temp, dest, entry.sha256)
            stage.copied.append(entry.size)
            if progress:
                progress(entry.size, 0)
            return
        try:
            stream = sources(entry.ref.uri).open(entry)
        except NotFoundError:
            if not allow_missing:
                raise
            del stage.temps[entry.path]
            stage.missing.append(entry.path)
            return
        with stream, open(temp, "xb") as out:
            sha256, size = hash_stream(stream, out)
        check_fetched(entry, sha256, size)
        stage.temps[entry.path] = (temp, dest, sha256)
        if progress:
            progress(size, 0)

    if todo:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            list(pool.map(fetch, todo))


def _local_copies(todo: list[tuple[FileEntry, Path]], hashes: HashState) -> dict[str, Path]:
    """Files on this machine holding checksummed references' bytes (an earlier download, or the
    ``file://`` source itself), except those this download replaces."""
    shas = [e.sha256 for e, _ in todo if e.ref is not None and e.ref.checksum]
    if not shas:
        return {}
    replaced = {str(dest.absolute()) for _, dest in todo}
    return {sha: path for sha, path in hashes.known_copies(shas).items() if str(path) not in replaced}


def _copy_verified(source: Path, temp: Path, entry: FileEntry) -> bool:
    """Copy ``source`` into ``temp`` hashing it; False (and ``temp`` gone) unless it holds ``entry``."""
    try:
        with open(source, "rb") as stream, open(temp, "xb") as out:
            sha256, size = hash_stream(stream, out)
    except OSError:
        temp.unlink(missing_ok=True)
        return False
    if (sha256, size) != (entry.sha256, entry.size):
        temp.unlink()
        return False
    return True


def _sort_out_existing(stage: StagedReferences, todo: list[tuple[FileEntry, Path]],
                       hashes: HashState) -> None:
    """A destination that already exists either holds the fetched bytes (unchanged) or was edited."""
    existing = [(e, dest) for e, dest in todo if e.path in stage.temps and dest.is_file()]
    sums = hashes.hash_files([dest for _, dest in existing]) if existing else []
    for (entry, _), (sha, _) in zip(existing, sums):
        temp, _, fetched = stage.temps[entry.path]
        if sha == fetched:
            temp.unlink()
            del stage.temps[entry.path]
            stage.unchanged.append(entry.path)
        else:
            stage.restored.append(entry.path)
    stage.unchanged.sort()
