"""Reading file lists back: a version's contents, verified against its digest, through the cache.

The read side of the chain (version record -> file list); writers, downloads and the collector
all read file lists this way, so none of them needs to import another's module for it.
"""
from __future__ import annotations

from . import keys
from .errors import IntegrityError
from .records import FileList, VersionRecord, parse
from .store import Store
from .versions import read_alias, read_version


def read_file_list(store: Store, record: VersionRecord) -> FileList:
    """A version's file list, from the cache when already fetched, verified against the digest."""
    what = f"file list of {record.project}/{record.name}:v{record.version}"
    path = store.cache.ensure(record.digest, size=None, what=what)
    store.cache.touch([path])
    return parse(FileList, path.read_bytes(), keys.blob(record.digest))


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
