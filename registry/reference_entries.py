"""What the reference sources (S3, local files, HTTP) share: the objects they find, turned into
file-list entries, and the checks a fetched reference must pass.

A reference's entry carries what the source said when it was logged (``Reference``); its
sha256 is the content's when ``checksum=True`` (the content was read once, at logging), else a
stand-in hash of that description, so the version's digest still changes when the source does.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Protocol, TypeVar

from .errors import IntegrityError, InvalidNameError
from .hashing import CHUNK
from .names import validate_path
from .records import FileEntry, Reference, canonical_json

T = TypeVar("T")
DEFAULT_MAX_OBJECTS = 10_000_000
"""W&B's default: how many objects one ``add_reference`` may expand to unless told otherwise."""


@dataclass(frozen=True)
class Found:
    """One object a source found: its artifact path, where it lives and what it was."""

    path: str
    uri: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    last_modified: str | None = None
    sha256: str | None = None
    """The content's hash, when it was read (``checksum=True``)."""


class Source(Protocol):
    """One URI scheme: find the objects a URI names, and open one again for a download."""

    def find(self, uri: str, name: str | None, checksum: bool, max_objects: int) -> list[Found]: ...

    def open(self, entry: FileEntry) -> IO[bytes]:
        """A stream of the recorded object's bytes; ``IntegrityError`` when the source says it changed."""
        ...


def to_entry(found: Found) -> FileEntry:
    ref = Reference(uri=found.uri, checksum=found.sha256 is not None, etag=found.etag,
                    version_id=found.version_id, last_modified=found.last_modified)
    return FileEntry(path=validate_path(found.path), sha256=found.sha256 or stand_in(ref, found.size),
                     size=found.size, ref=ref)


def stand_in(ref: Reference, size: int) -> str:
    """The sha256 of a reference whose content was not read: a hash of what identifies it."""
    identity = {"uri": ref.uri, "etag": ref.etag, "version_id": ref.version_id,
                "last_modified": ref.last_modified, "size": size}
    return hashlib.sha256(b"registry-reference:" + canonical_json(identity)).hexdigest()


def artifact_path(name: str | None, relative: str | None, base: str) -> str:
    """Where a found object goes: ``name`` (or ``base``) for a single object; ``name/relative``
    (or ``relative``) for an object found under a prefix or directory."""
    if relative is None:
        return validate_path(name or base)
    return validate_path(f"{name.strip('/')}/{relative}" if name else relative)


def check_count(count: int, max_objects: int, uri: str) -> None:
    """Refuse a prefix or directory holding more than ``max_objects``: never a silent truncation."""
    if count > max_objects:
        raise InvalidNameError(
            f"{uri} holds more than max_objects={max_objects} objects; nothing was added: "
            "pass a larger max_objects to add_reference, or reference a narrower prefix"
        )


def first(items: Iterable[T], max_objects: int, uri: str) -> list[T]:
    """At most ``max_objects`` items, reading one more to tell whether there were too many."""
    taken: list[T] = []
    for item in items:
        taken.append(item)
        check_count(len(taken), max_objects, uri)
    return taken


def hash_stream(stream: IO[bytes], out: IO[bytes] | None = None) -> tuple[str, int]:
    """sha256 and size of a stream read to its end, copied to ``out`` on the way if given."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest(), size


def changed(entry: FileEntry, detail: str) -> IntegrityError:
    assert entry.ref is not None
    return IntegrityError(
        f"reference {entry.path!r} ({entry.ref.uri}) changed since it was logged ({detail}): "
        "log a new version that references it again, or restore the source"
    )


def check_fetched(entry: FileEntry, sha256: str, size: int) -> None:
    """What a fetched reference must match: its sha256 when checksummed, else its size."""
    if entry.ref is not None and entry.ref.checksum and sha256 != entry.sha256:
        raise changed(entry, f"sha256 {sha256[:12]}... instead of {entry.sha256[:12]}...")
    if size != entry.size:
        raise changed(entry, f"{size} bytes instead of {entry.size}")


def check_metadata(entry: FileEntry, etag: str | None, last_modified: str | None) -> None:
    """The source's ETag and Last-Modified, where both were recorded, must be unchanged."""
    ref = entry.ref
    assert ref is not None
    if ref.etag is not None and etag is not None and etag != ref.etag:
        raise changed(entry, f"ETag {etag} instead of {ref.etag}")
    if ref.last_modified is not None and last_modified is not None and last_modified != ref.last_modified:
        raise changed(entry, f"last modified {last_modified} instead of {ref.last_modified}")
