"""Offline mode: a store that writes to a local outbox and reads what this machine has seen.

With ``REGISTRY_MODE=offline`` (``registry.init(mode="offline")``, ``registry --offline``) the
store a run or ``Api`` gets is an ``OfflineBackend``: every write lands in the *outbox*, a
complete local store under the cache directory that ``registry sync`` later publishes; every
read looks in the outbox first and then in the *seen* store, where online calls left the
version records and alias targets they resolved (``seen.remember``). Blob bodies come from
the outbox, the download cache, or the real store's own directory when that is local. No
request ever leaves the machine, so nothing here can be slow or fail for want of a network.

An alias read from the seen store is what this machine last saw, not what the store says now:
the first such read of each alias logs a warning saying so.
"""
from __future__ import annotations

import builtins
import hashlib
import heapq
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from backends import Backend, ObjectInfo, PreconditionFailed
from backends.local import LocalBackend

from . import keys
from .records import AliasBase, AliasRecord, parse
from .settings import Settings

logger = logging.getLogger("registry")
SEEN_TOKEN = "seen:"
"""Prefix of a token read from the seen store: writing against it creates the key in the outbox."""
_ALIAS_KEY = re.compile(r"projects/[^/]+/artifacts/[^/]+/aliases/[^/]+\.json")


def store_slug(url: str) -> str:
    """A directory name for one store URL: readable, and unique through a short hash."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        normal = url.rstrip("/")
    else:
        path = unquote(parsed.path) if parsed.scheme == "file" else url
        normal = str(Path(path).expanduser().absolute())
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", normal).strip("_")[-48:]
    return f"{readable}-{hashlib.sha256(normal.encode()).hexdigest()[:10]}"


def offline_root(settings: Settings) -> Path:
    return Path(settings.cache_dir) / "offline" / store_slug(settings.url)


def outbox_dir(settings: Settings) -> Path:
    """The outbox for the store ``settings.url`` names: what offline runs logged, until synced."""
    return offline_root(settings) / "outbox"


def seen_dir(settings: Settings) -> Path:
    """Version records and alias targets this machine resolved online, laid out as in the store."""
    return offline_root(settings) / "seen"


def synced_dir(settings: Settings) -> Path:
    """Where a fully synced outbox is moved (kept for inspection; safe to delete)."""
    return offline_root(settings) / "synced"


def real_store_dir(settings: Settings) -> Path | None:
    """The real store's directory when it is local (its blobs are readable offline), else None."""
    parsed = urlparse(settings.url)
    if parsed.scheme == "s3":
        return None
    return Path(unquote(parsed.path) if parsed.scheme == "file" else settings.url).expanduser()


def open_offline_backend(settings: Settings) -> OfflineBackend:
    blob_dirs = [Path(settings.cache_dir)]
    local = real_store_dir(settings)
    if local is not None:
        blob_dirs.append(local)
    return OfflineBackend(LocalBackend(outbox_dir(settings)), LocalBackend(seen_dir(settings)),
                          [LocalBackend(d) for d in blob_dirs], real_url=settings.url)


class OfflineBackend(Backend):
    """The outbox overlaid on the seen store; blobs also from the cache (see the module docstring)."""

    def __init__(self, outbox: LocalBackend, seen: LocalBackend, blob_sources: list[LocalBackend],
                 real_url: str) -> None:
        self.outbox, self.seen, self.blob_sources = outbox, seen, blob_sources
        self.url = f"{real_url} (offline: outbox {outbox.root})"
        self._warned: set[str] = set()

    # -- reads -----------------------------------------------------------------------------
    def read(self, key: str) -> bytes:
        return self.read_with_token(key)[0]

    def read_with_token(self, key: str) -> tuple[bytes, str]:
        for source in self._readers(key):
            try:
                data, token = source.read_with_token(key)
            except FileNotFoundError:
                continue
            if source is self.outbox:
                return data, token
            self._warn_if_stale(key, data)
            return data, SEEN_TOKEN + token
        raise FileNotFoundError(key)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        for source in self._readers(key):
            if source.exists(key):
                return source.read_range(key, start, end)
        raise FileNotFoundError(key)

    def read_to_file(self, key: str, path: Path, size: int | None = None, hasher=None) -> bool:
        for source in self._readers(key):
            if source.exists(key):
                return source.read_to_file(key, path, size=size, hasher=hasher)
        raise FileNotFoundError(key)

    def stat(self, key: str) -> ObjectInfo:
        for source in self._listed(key):
            try:
                return source.stat(key)
            except FileNotFoundError:
                continue
        raise FileNotFoundError(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Outbox and seen listings merged in key order (the outbox's entry wins a tie)."""
        sources = self._listed(prefix)
        merged = heapq.merge(*(source.list(prefix) for source in sources), key=lambda info: info.key)
        last = None
        for info in merged:
            if info.key != last:
                yield info
            last = info.key

    def _readers(self, key: str) -> builtins.list[LocalBackend]:
        if key.startswith(keys.blob_prefix()):
            return [self.outbox, *self.blob_sources]
        return [self.outbox, self.seen]

    def _listed(self, key: str) -> builtins.list[LocalBackend]:
        """Blobs "exist" only in the outbox, so a version logged offline carries all its bytes."""
        if key.startswith(keys.blob_prefix()) or not key.startswith(keys.projects_prefix()):
            return [self.outbox]
        return [self.outbox, self.seen]

    def _warn_if_stale(self, key: str, data: bytes) -> None:
        if not _ALIAS_KEY.fullmatch(key) or key in self._warned:
            return
        self._warned.add(key)
        alias = parse(AliasRecord, data, key)
        _, project, _, name, _, _ = key.split("/", 5)
        logger.warning(
            "registry is offline: %s/%s:%s -> v%d is what this machine last saw (pointing there since %s); "
            "the store may have moved it", project, name, alias.alias, alias.version,
            alias.updated_at.strftime("%Y-%m-%d %H:%M UTC"),
        )

    # -- writes: all to the outbox ---------------------------------------------------------
    def write(self, key: str, data: bytes | memoryview, sha256: str | None = None) -> None:
        self.outbox.write(key, data, sha256=sha256)

    def write_file(self, key: str, path: Path, sha256: str | None = None, progress=None) -> None:
        self.outbox.write_file(key, path, sha256=sha256, progress=progress)

    def write_if_absent(self, key: str, data: bytes) -> str:
        self._keep_alias_base(key, None)
        return self.outbox.write_if_absent(key, data)

    def write_if_match(self, key: str, data: bytes, token: str) -> str:
        if not token.startswith(SEEN_TOKEN):
            return self.outbox.write_if_match(key, data, token)
        self._keep_alias_base(key, self.seen.read(key))
        try:
            return self.outbox.write_if_absent(key, data)
        except FileExistsError:
            raise PreconditionFailed(key) from None

    def _keep_alias_base(self, key: str, seen_body: bytes | None) -> None:
        """Before an alias first moves offline, note where it pointed, so ``sync`` can move it
        in the real store by compare-and-swap from there (and report a conflict otherwise)."""
        if not _ALIAS_KEY.fullmatch(key) or self.outbox.exists(key):
            return
        version = parse(AliasRecord, seen_body, key).version if seen_body is not None else None
        try:
            self.outbox.write_if_absent(keys.sync_alias_base(key), AliasBase(version=version).to_bytes())
        except FileExistsError:
            pass

    def delete(self, key: str) -> None:
        self.outbox.delete(key)

    def delete_if_match(self, key: str, token: str) -> None:
        if token.startswith(SEEN_TOKEN):
            raise PreconditionFailed(f"{key} is only known from what this machine saw: not removable offline")
        self.outbox.delete_if_match(key, token)

    def check_ready(self) -> None:
        self.outbox.check_ready()
