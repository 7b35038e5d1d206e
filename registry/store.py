"""The composition root: a backend, its blob store and the local cache, opened from one URL."""
from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backends import AccessDenied, Backend, StorageUnavailable, open_backend

from .blobs import BlobStore
from .cache import Cache, open_cache
from .chunk_memory import ChunkMemory
from .errors import NotFoundError, PermissionDenied, StorageError
from .hashing import HashState
from .offline import open_offline_backend
from .pack_locations import PackIndexes
from .settings import Settings
from .state_db import RememberedValues


class GuardedBackend:
    """Delegates to a backend, turning its ``StorageUnavailable`` into the registry's ``StorageError``
    (``AccessDenied`` into ``PermissionDenied``)."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args, **kwargs):
            try:
                result = getattr(self._inner, name)(*args, **kwargs)  # looked up per call: patchable
            except StorageUnavailable as e:
                raise _registry_error(e) from None
            return _guard_iter(result) if inspect.isgenerator(result) else result

        setattr(self, name, call)  # made once per method: downloads call some per blob
        return call


def _guard_iter(gen):
    try:
        yield from gen
    except StorageUnavailable as e:
        raise _registry_error(e) from None


def _registry_error(error: StorageUnavailable) -> StorageError:
    return PermissionDenied(str(error)) if isinstance(error, AccessDenied) else StorageError(str(error))


class Store:
    """Everything one registry URL needs: ``backend``, ``blobs``, ``cache`` and ``hashes``."""

    def __init__(self, settings: Settings, backend: Backend | None = None) -> None:
        self.settings = settings
        try:
            raw = backend or _open_backend(settings)
        except ValueError as e:
            raise StorageError(str(e)) from None
        self.backend: Backend = GuardedBackend(raw)  # type: ignore[assignment]
        self.url = raw.url
        self._checked = False
        self.hashes = _hash_state_at(str(settings.cache_dir))
        self.pack_indexes = PackIndexes(self.backend, Path(settings.cache_dir), workers=settings.workers)
        self.blobs = BlobStore(self.backend, workers=settings.workers, packs=self.pack_indexes)
        self.cache: Cache = open_cache(Path(settings.cache_dir), self.blobs, settings.link_mode,
                                       settings.cache_max)
        self.chunk_memory = ChunkMemory(Path(settings.cache_dir) / "state.sqlite")
        self.manifest_memory = RememberedValues(Path(settings.cache_dir) / "state.sqlite", "manifest_digests")
        """``manifest_pages.entries_key`` -> the digest those entries' manifest has: an unchanged
        re-log finds the version it would make without building it."""

    @property
    def writes_packs(self) -> bool:
        """Whether new versions put their bytes in packs: format 2 on a remote store. A local
        directory keeps each file whole (placed by reflink or hardlink from the store itself), and
        so does the offline outbox (``sync`` sends its files on as they are)."""
        return self.settings.store_format == 2 and not self.cache.is_store and not self.offline

    def require_present(self) -> None:
        """Refuse to read a store that is not there (a typo in its URL is not an empty store)."""
        problem = self.backend.missing_store()
        if problem is not None:
            raise StorageError(problem)

    @contextmanager
    def explain_missing(self) -> Iterator[None]:
        """Within this block, "not found" becomes "no store here" when the store itself is missing."""
        try:
            yield
        except NotFoundError as e:
            self.require_present()
            if self.offline:
                raise NotFoundError(
                    f"{e} (registry is offline: only what this machine saw online or logged offline "
                    "can be found; go online, or `registry sync` first)"
                ) from None
            raise

    @property
    def offline(self) -> bool:
        """Whether this store is the offline outbox (see ``registry.offline``)."""
        return self.settings.mode == "offline"

    def check_writable(self) -> None:
        """Run the backend's capability probe once, before the first write that relies on it."""
        if not self._checked:
            self.backend.check_ready()
            self._checked = True


def _open_backend(settings: Settings) -> Backend:
    if settings.mode == "offline":
        return open_offline_backend(settings)
    return open_backend(settings.url)


@functools.lru_cache(maxsize=8)
def _open(settings_json: str) -> Store:
    return Store(Settings.model_validate_json(settings_json))


def open_store(url: str | None = None, mode: str | None = None) -> Store:
    """The store for ``url`` (default: ``REGISTRY_URL`` or the embedded local store), reused per process;
    ``mode="offline"`` (or ``REGISTRY_MODE=offline``) gives the offline outbox instead."""
    return _open(Settings.from_env(url, mode).model_dump_json())


def local_hash_state() -> HashState:
    """This machine's hash database (in the cache directory), for hashing before a store is chosen.
    Where new versions will go into packs (format 2 on S3), it also cuts large files into chunks."""
    settings = Settings.from_env()
    packs = settings.store_format == 2 and settings.mode == "online" and settings.url.startswith("s3://")
    return _hash_state_at(str(settings.cache_dir), cut_large=packs)


@functools.lru_cache(maxsize=4)
def _hash_state_at(cache_dir: str, cut_large: bool = False) -> HashState:
    return HashState(Path(cache_dir) / "state.sqlite", cut_large)
