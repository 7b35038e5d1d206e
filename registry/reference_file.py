"""``file:///path`` references: a file, or every file under a directory (e.g. a shared NFS mount).

Size and modification time are recorded; with ``checksum`` the content is hashed too (through
this machine's hash database, so a file hashed before is not read again).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from .errors import InvalidNameError, NotFoundError
from .hashing import HashState
from .records import FileEntry
from .reference_entries import Found, artifact_path, changed, first


class FileSource:
    """Files on a filesystem this machine (and each machine that downloads) can read."""

    def __init__(self, hashes: HashState) -> None:
        self.hashes = hashes

    def find(self, uri: str, name: str | None, checksum: bool, max_objects: int) -> list[Found]:
        root = local_path(uri)
        if root.is_file():
            files = [(artifact_path(name, None, root.name), root)]
        elif root.is_dir():
            walked = ((artifact_path(name, rel, ""), path) for rel, path in _walk(root))
            files = first(walked, max_objects, uri)
        else:
            raise NotFoundError(f"cannot reference {uri}: no such file or directory")
        hashes = self.hashes.hash_files([p for _, p in files]) if checksum else [None] * len(files)
        found = []
        for (path, file), hashed in zip(files, hashes):
            st = file.stat()
            found.append(Found(path=path, uri=file.absolute().as_uri(), size=st.st_size,
                               last_modified=_modified(st), sha256=hashed[0] if hashed else None))
        return found

    def open(self, entry: FileEntry) -> IO[bytes]:
        assert entry.ref is not None
        path = local_path(entry.ref.uri)
        try:
            stream = open(path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFoundError(
                f"reference {entry.path!r} ({entry.ref.uri}) does not exist (any more): "
                "restore it, or log a new version"
            ) from None
        st = os.fstat(stream.fileno())
        if not entry.ref.checksum and _modified(st) != entry.ref.last_modified:
            stream.close()
            raise changed(entry, f"modified at {_modified(st)}, not {entry.ref.last_modified}")
        return stream


def local_path(uri: str) -> Path:
    """``file:///data/x`` (or ``file://localhost/data/x``) -> ``/data/x``."""
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise InvalidNameError(f"{uri} names host {parsed.netloc!r}: use file:///absolute/path instead")
    return Path(unquote(parsed.path))


def _modified(st: os.stat_result) -> str:
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9, timezone.utc).isoformat()


def _walk(root: Path):
    """(path relative to ``root``, file) for each file under ``root``, sorted (links followed)."""
    for directory, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            full = Path(directory) / name
            if full.is_file():
                yield full.relative_to(root).as_posix(), full
