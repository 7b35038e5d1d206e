"""A store in a local directory, safe with many processes writing at once.

Every write goes to a unique temp file that is fsynced and then renamed (or hard-linked,
for write-if-absent) into place, so readers see whole objects or none. Compare-and-swap
holds a per-key lock file while it checks the token and renames.
"""
from __future__ import annotations

import builtins
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .base import Backend, ObjectInfo
from .errors import ContentMismatch, PreconditionFailed, StorageUnavailable

_TMP_DIR = ".tmp"
_LOCK_DIR = ".locks"
_CHUNK = 1 << 20


def _token(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


class LocalBackend(Backend):
    """Objects are files under ``root``; keys map to relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.url = str(self.root)

    def missing_store(self) -> str | None:
        if self.root.is_dir():
            return None
        return (
            f"no store at {self.root}: the directory does not exist; "
            "check REGISTRY_URL or --url (logging an artifact creates it)"
        )

    # -- paths -----------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key or "\0" in key:
            raise ValueError(f"invalid store key {key!r}")
        return self.root / key

    def _temp_path(self) -> Path:
        tmp = self.root / _TMP_DIR
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{uuid.uuid4().hex}.part"

    def _stage(
        self, data: bytes | memoryview | None = None, source: Path | None = None, sha256: str | None = None
    ) -> Path:
        """Write the new contents to a fsynced temp file beside the store (checking ``sha256``)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageUnavailable(f"cannot create the store directory {self.root}: {e.strerror}") from e
        temp = self._temp_path()
        try:
            with open(temp, "wb") as out:
                if source is not None:
                    _copy_checked(source, out, sha256)
                else:
                    out.write(data or b"")
                out.flush()
                os.fsync(out.fileno())
        except BaseException:  # a full disk, a vanished source, a mismatch: no temp file stays
            temp.unlink(missing_ok=True)
            raise
        return temp

    # -- reads -----------------------------------------------------------------------------
    def read(self, key: str) -> bytes:
        return self.read_with_token(key)[0]

    def read_with_token(self, key: str) -> tuple[bytes, str]:
        with open(self._path(key), "rb") as f:
            return f.read(), _token(os.fstat(f.fileno()))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        with open(self._path(key), "rb") as f:
            return os.pread(f.fileno(), max(0, end - start), start)

    def read_to_file(self, key: str, path: Path, size: int | None = None, hasher=None) -> bool:
        with open(self._path(key), "rb") as src, open(path, "wb") as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
        return hasher is not None

    def stat(self, key: str) -> ObjectInfo:
        st = os.stat(self._path(key))
        return ObjectInfo(key, st.st_size, _token(st), st.st_mtime)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base_key = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self.root / base_key if base_key else self.root
        if not base.is_dir():
            return
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(base):
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            if not rel_dir:
                dirnames[:] = [d for d in dirnames if d not in (_TMP_DIR, _LOCK_DIR)]
            for name in filenames:
                key = rel_dir + name
                if key.startswith(prefix):
                    try:
                        st = os.stat(os.path.join(dirpath, name))
                    except FileNotFoundError:
                        continue
                    found.append(ObjectInfo(key, st.st_size, _token(st), st.st_mtime))
        yield from sorted(found, key=lambda info: info.key)

    def list_children(self, prefix: str, start_after: str | None = None) -> builtins.list[str]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        try:
            names = [e.name for e in os.scandir(base) if e.is_dir() and e.name not in (_TMP_DIR, _LOCK_DIR)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(n for n in names if start_after is None or n > start_after)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    # -- writes ----------------------------------------------------------------------------
    def _publish(self, temp: Path, key: str) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)

    def write(self, key: str, data: bytes | memoryview, sha256: str | None = None) -> None:
        self._publish_staged(self._stage(data), key)

    def write_file(self, key: str, path: Path, sha256: str | None = None, progress=None) -> None:
        self._publish_staged(self._stage(source=Path(path), sha256=sha256), key)
        if progress:
            progress(os.path.getsize(path))

    def write_if_absent(self, key: str, data: bytes) -> str:
        temp = self._stage(data)
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.link(temp, final)  # atomic; fails if final exists
        finally:
            temp.unlink()
        return _token(os.stat(final))

    def write_if_match(self, key: str, data: bytes, token: str) -> str:
        temp = self._stage(data)
        try:
            with self._lock(key):
                self._require_token(key, token)
                self._publish(temp, key)
                return _token(os.stat(self._path(key)))
        finally:
            temp.unlink(missing_ok=True)

    def _publish_staged(self, temp: Path, key: str) -> None:
        try:
            self._publish(temp, key)
        finally:
            temp.unlink(missing_ok=True)  # renamed into place, or not: either way nothing is left

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_if_match(self, key: str, token: str) -> None:
        with self._lock(key):  # the lock compare-and-swap holds, so a concurrent move cannot slip in
            self._require_token(key, token)
            self._path(key).unlink()

    def _require_token(self, key: str, token: str) -> None:
        """Under the key's lock: refuse unless the object is still the one ``token`` names."""
        try:
            current = _token(os.stat(self._path(key)))
        except FileNotFoundError:
            current = None
        if current != token:
            raise PreconditionFailed(f"{key} changed since it was read")

    def _lock(self, key: str):
        from filelock import FileLock  # only compare-and-swap needs it

        locks = self.root / _LOCK_DIR
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(str(locks / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")))


def _copy_checked(source: Path, out, sha256: str | None) -> None:
    """Copy ``source`` into ``out``, hashing it; refuse (before any rename) bytes that are not
    ``sha256``, and a source that vanished since it was hashed."""
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except FileNotFoundError:
        raise ContentMismatch(f"{source} no longer exists: it was removed after it was hashed") from None
    if sha256 is not None and digest.hexdigest() != sha256:
        raise ContentMismatch(f"{source} no longer hashes to sha256 {sha256}: it changed after it was hashed")
