"""Reading file lists back: a version's contents, verified against its digest, through the cache.

The read side of the chain (version record -> file list); writers, downloads and the collector
all read file lists this way, so none of them needs to import another's module for it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from . import keys
from .errors import IntegrityError
from .manifest_pages import iter_entries, page_digests
from .records import FileEntry, FileList, VersionRecord, parse
from .store import Store
from .versions import read_alias, read_version


def read_file_list(store: Store, record: VersionRecord) -> FileList:
    """A version's file list, from the cache when already fetched, verified against the digest.

    Format 2 keeps it as a tree of manifest pages: all of them are read (prefer
    ``version_entries`` where a part of a large version will do)."""
    if record.paged:
        return FileList.build(list(version_entries(store, record)))
    what = f"file list of {record.project}/{record.name}:v{record.version}"
    path = store.cache.ensure(record.digest, size=None, what=what)
    store.cache.touch([path])
    return parse(FileList, path.read_bytes(), keys.blob(record.digest))


KEEP_PAGES_MAX_FILES = 100_000
"""``keep_file_list`` brings every page of a version up to this many files (about 12 MB of
pages); a larger one's leaves come when something reads them (a pull, ``show``)."""


def keep_file_list(store: Store, record: VersionRecord) -> None:
    """Bring a version's file list into the cache for offline use, without parsing it: the
    blob (format 1), or the manifest's pages (format 2: the root and inner pages, and the
    leaves too unless the version holds more than ``KEEP_PAGES_MAX_FILES`` files)."""
    what = f"file list of {record.project}/{record.name}:v{record.version}"
    if not record.paged:
        store.cache.touch([store.cache.ensure(record.digest, size=None, what=what)])
        return
    leaves = record.file_count <= KEEP_PAGES_MAX_FILES
    kept = [store.cache.ensure(sha, size=None, what=what) if leaves else None
            for sha in page_digests(page_reader(store, record), record.digest)]
    store.cache.touch([path for path in kept if path is not None])


def version_entries(store: Store, record: VersionRecord, prefix: str | None = None) -> Iterator[FileEntry]:
    """A version's files whose paths start with ``prefix`` (all without one), streamed: a
    format-2 version reads only the manifest pages that can hold them."""
    if not record.paged:
        files = read_file_list(store, record).files
        yield from (f for f in files if prefix is None or f.path.startswith(prefix))
        return
    yield from iter_entries(page_reader(store, record), record.digest, prefix)


def entries_of_record(read_blob: Callable[[str], bytes], record: VersionRecord) -> Iterator[FileEntry]:
    """A version's files from a verified blob reader alone (no cache): either format."""
    if record.paged:
        yield from iter_entries(read_blob, record.digest)
    else:
        yield from parse(FileList, read_blob(record.digest), keys.blob(record.digest)).files


def manifest_blobs(read_blob: Callable[[str], bytes], record: VersionRecord) -> set[str]:
    """The blobs that hold a version's file list: one (format 1) or its manifest pages (format 2)."""
    return set(page_digests(read_blob, record.digest)) if record.paged else {record.digest}


def page_reader(store: Store, record: VersionRecord | None = None) -> Callable[[str], bytes]:
    """Manifest pages by sha256, verified, through the cache (a page is an ordinary blob)."""
    what = f"file list of {record.project}/{record.name}:v{record.version}" if record else "file list"

    def read(sha256: str) -> bytes:
        path = store.cache.ensure(sha256, size=None, what=what)
        return path.read_bytes()

    return read


def latest_file_list(store: Store, project: str, name: str) -> FileList | None:
    """The file list ``latest`` points at; None when there is none or it cannot be read (a
    writer then just checks more blobs)."""
    found = read_alias(store.backend, project, name, "latest")
    if found is None:
        return None
    try:
        return read_file_list(store, read_version(store.backend, project, name, found[0].version))
    except (LookupError, IntegrityError):
        return None
