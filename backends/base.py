"""The contract every storage backend fulfils: a handful of primitives on flat keys.

Keys are ``/``-separated strings built by the registry (never by users). Everything the
registry does is derived from these primitives, so a new backend only implements them.
"""
from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ObjectInfo:
    """What ``stat`` and ``list`` report about one object."""

    key: str
    size: int
    token: str
    """Changes whenever the object is rewritten: the ETag on S3."""
    modified: float
    """Last write, seconds since the epoch."""


class Backend(ABC):
    """Read, write, write-if-absent, compare-and-swap, stat, list and delete objects."""

    url: str

    @abstractmethod
    def read(self, key: str) -> bytes:
        """Whole object; ``FileNotFoundError`` when missing."""

    @abstractmethod
    def read_with_token(self, key: str) -> tuple[bytes, str]:
        """Object and the token to pass to ``write_if_match``."""

    @abstractmethod
    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object (a pack's chunks); ``FileNotFoundError`` when missing.
        Shorter data comes back when the object ends early: the caller checks."""

    def read_range_view(self, key: str, start: int, end: int) -> bytes | memoryview:
        """``read_range`` as any read-only buffer: a backend whose client hands it the bytes in a
        buffer of its own returns that, uncopied (a large download reads every byte this way)."""
        return self.read_range(key, start, end)

    @abstractmethod
    def read_to_file(self, key: str, path: Path, size: int | None = None, hasher=None) -> bool:
        """Stream an object into ``path`` (overwritten), never holding it all in memory.

        Returns True when ``hasher`` (a ``hashlib`` object) was fed every byte on the way,
        so the caller need not read the file again to check it.
        """

    @abstractmethod
    def write(self, key: str, data: bytes | memoryview, sha256: str | None = None) -> None:
        """Unconditional write; the object appears whole or not at all. ``data`` must not change
        while this runs (a pack is a view of its builder's buffer)."""

    @abstractmethod
    def write_file(self, key: str, path: Path, sha256: str | None = None, progress=None) -> None:
        """Upload a file from disk (multipart when large), at most the size it had when this began.

        With ``sha256``, the bytes actually sent are checked against it (by the server, or by
        hashing them as they are read), and ``ContentMismatch`` is raised, leaving nothing under
        ``key``, when they differ: the file changed after it was hashed. ``progress``, if given,
        is called with byte counts as the upload proceeds (they add up to the file's size; a
        retried part may report a negative count).
        """

    @abstractmethod
    def write_if_absent(self, key: str, data: bytes) -> str:
        """Create ``key``; ``FileExistsError`` when it already exists. Returns the new token."""

    @abstractmethod
    def write_if_match(self, key: str, data: bytes, token: str) -> str:
        """Replace ``key`` only if its token is still ``token``; else ``PreconditionFailed``."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, token and time of ``key``; ``FileNotFoundError`` when missing."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    def list_children(self, prefix: str, start_after: str | None = None) -> builtins.list[str]:
        """Names of the immediate "directories" under ``prefix`` (which ends with ``/``), sorted;
        with ``start_after``, only names after it (S3 then lists only those: cheap for the newest
        of many time-ordered names)."""
        rests = (info.key[len(prefix):] for info in self.list(prefix))
        names = {rest.split("/", 1)[0] for rest in rests if "/" in rest}
        return sorted(n for n in names if start_after is None or n > start_after)

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; missing keys are not an error."""

    @abstractmethod
    def delete_if_match(self, key: str, token: str) -> None:
        """Remove ``key`` only if its token is still ``token``.

        Raises ``PreconditionFailed`` otherwise, and also when ``key`` is gone.
        """

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except FileNotFoundError:
            return False
        return True

    def local_path(self, key: str) -> Path | None:
        """Where the object lives on this machine's disk, if it does (lets the store be the cache)."""
        return None

    def missing_store(self) -> str | None:
        """Why this store cannot be read at all (e.g. its directory does not exist), else None.

        Writing creates a store; reading one that is not there is most likely a typo in its URL.
        """
        return None

    def check_ready(self) -> None:  # noqa: B027 - an optional hook: most stores are always ready
        """Refuse early, with a clear message, a store that cannot keep the registry's promises."""
