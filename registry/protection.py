"""Keeping ``gc`` away from blobs that writers rely on: the one protocol writer and collector share.

A writer names its blobs in an in-flight marker *before* it checks which exist, keeps the
marker's lease fresh on a background timer while it runs, and deletes it once a record
references the blobs. A collector announces itself with a lock (kept fresh the same way) for
its whole run, and reads the markers before and again after computing what is referenced.

One interleaving is left: a collector that read the markers before the writer wrote its own
may delete a blob the writer then *found* (rather than uploaded). So once its record is
written, the writer waits until every collector running at that moment has finished, checks
the blobs it found again and uploads any that are gone (``Protection.settle``). Collectors that
start later see the record. If the lease could not be refreshed for longer than it lasts,
every protected blob is checked, not only the found ones.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from backends import Backend

from . import keys
from .errors import IntegrityError
from .records import GcLock, InflightMarker, now, parse

if TYPE_CHECKING:
    from .blobs import BlobStore, Progress

MARKER_LEASE_SECONDS = 6 * 3600
"""A marker or gc lock not rewritten for this long belongs to a process that died."""
REFRESH_SECONDS = 15 * 60
"""How often a running writer or collector rewrites its marker or lock (well inside the lease)."""
POLL_SECONDS = 0.2
"""How often a writer waiting for collectors to finish looks again."""

Source = Path | bytes
"""Where a blob's bytes come from: a local file or bytes in memory."""

logger = logging.getLogger("registry")


class Lease:
    """An object in the store that says "I am running": written on entry, rewritten every
    ``REFRESH_SECONDS`` by a background thread, deleted on exit. Readers judge it by its
    last-modified time, so the lease of a process that dies runs out on its own."""

    def __init__(self, backend: Backend, key: str, body: bytes) -> None:
        self.backend, self.key = backend, key
        self._body = body
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._written_at: float | None = None  # monotonic start of the last successful write
        self._lapsed = False

    def __enter__(self) -> Lease:
        self._write()
        self._thread = threading.Thread(target=self._refresh, name=f"registry-lease-{self.key}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.backend.delete(self.key)
        except Exception:  # never fail work that is done: the key expires after its lease anyway
            logger.warning("registry: could not delete %s; it expires after its lease", self.key)

    def replace(self, body: bytes) -> None:
        """Write a new body now (e.g. a marker naming more blobs)."""
        with self._lock:
            self._body = body
        self._write()

    @property
    def lapsed(self) -> bool:
        """Whether the object may have looked dead to a reader at some moment since entry."""
        with self._lock:
            return (
                self._lapsed
                or self._written_at is None
                or time.monotonic() - self._written_at > MARKER_LEASE_SECONDS
            )

    def _write(self) -> None:
        with self._lock:
            started = time.monotonic()
            self.backend.write(self.key, self._body)
            if self._written_at is not None and time.monotonic() - self._written_at > MARKER_LEASE_SECONDS:
                self._lapsed = True
            self._written_at = started

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self._write()
            except Exception as e:  # the next tick tries again; ``lapsed`` tells the owner if it was too late
                logger.warning(
                    "registry: could not refresh %s (%s); retrying in %.0fs", self.key, e, REFRESH_SECONDS
                )


class Protection:
    """An in-flight marker for one writer: the blobs named in it are safe from ``gc`` while it runs.

    >>> with Protection(store.blobs, shas) as guard:        # doctest: +SKIP
    ...     guard.upload_missing({sha: path for sha, path in files.items()})
    ...     write_the_record_that_references_them()
    ...     guard.settle()
    """

    def __init__(self, blobs: BlobStore, shas: Iterable[str] = ()) -> None:
        self.blobs = blobs
        self.shas = set(shas)
        self._lease = Lease(blobs.backend, keys.inflight(uuid.uuid4().hex), self._marker())
        self._sources: dict[str, Source] = {}
        self._found: set[str] = set()
        self._covering = threading.Lock()

    def __enter__(self) -> Protection:
        self._lease.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._lease.__exit__(exc_type, exc, tb)

    def open(self) -> Protection:
        """For a holder that outlives one block (a run's images until its history is flushed)."""
        return self.__enter__()

    def close(self) -> None:
        self.__exit__(None, None, None)

    def _marker(self) -> bytes:
        return InflightMarker(started_at=now(), blobs=sorted(self.shas)).to_bytes()

    def cover(self, shas: Iterable[str]) -> None:
        """Add blobs to the marker (rewritten now, before anyone checks whether they exist).
        Safe from several threads (a writer's pack uploads announce their packs): a marker body
        is written only with every blob added before it."""
        with self._covering:
            new = set(shas) - self.shas
            if new:
                self.shas |= new
                self._lease.replace(self._marker())

    @property
    def lapsed(self) -> bool:
        """Whether the marker may have looked dead to a collector at some moment: then anything
        it named may have been taken."""
        return self._lease.lapsed

    def upload_missing(self, sources: Mapping[str, Source], progress: Progress | None = None) -> set[str]:
        """Upload those of ``sha256 -> source`` the store lacks (verified); returns what was uploaded."""
        self.cover(sources)
        missing = self.blobs.missing(sources)
        self._sources.update(sources)
        self._found |= set(sources) - missing
        self._put({sha: sources[sha] for sha in missing}, progress)
        return missing

    def settle(self) -> None:
        """Call once a record references the blobs: waits for the collectors running now, then
        uploads again whatever they removed of the blobs found (or, after a lapse, of all)."""
        at_risk = set(self._sources) if self.lapsed else set(self._found)
        if not at_risk:
            return
        wait_while_collecting(self.blobs.backend)
        gone = self.blobs.missing(at_risk)
        if gone:
            logger.info("registry: %d blob(s) removed by a concurrent gc were uploaded again", len(gone))
            self._put({sha: self._sources[sha] for sha in gone})

    def _put(self, sources: Mapping[str, Source], progress: Progress | None = None) -> None:
        self.blobs.upload({sha: s for sha, s in sources.items() if isinstance(s, Path)}, progress=progress)
        for sha, source in sources.items():
            if not isinstance(source, Path):
                self.blobs.upload_bytes(sha, source)


def live_markers(backend: Backend, now_ts: float, remove_expired: bool = True) -> set[str]:
    """Blobs named by in-flight markers younger than the lease; expired markers are removed
    (unless ``remove_expired`` is False, as in a dry run, which deletes nothing)."""
    protected: set[str] = set()
    for info in backend.list(keys.inflight_prefix()):
        if now_ts - info.modified > MARKER_LEASE_SECONDS:
            if remove_expired:
                backend.delete(info.key)
            continue
        try:
            protected.update(parse(InflightMarker, backend.read(info.key), info.key).blobs)
        except (FileNotFoundError, IntegrityError):
            continue
    return protected


def collecting(backend: Backend, dry_run: bool = False) -> Lease:
    """The lock a collector holds for its whole run: ``with collecting(backend): ...``."""
    lock = GcLock(started_at=now(), dry_run=dry_run)
    return Lease(backend, keys.gc_lock(uuid.uuid4().hex), lock.to_bytes())


def running_collectors(backend: Backend) -> set[str]:
    """The locks of collectors that are running (refreshed within the lease)."""
    now_ts = time.time()
    return {i.key for i in backend.list(keys.gc_lock_prefix()) if now_ts - i.modified < MARKER_LEASE_SECONDS}


def wait_while_collecting(backend: Backend) -> None:
    """Block until every collector running now has finished (or died and let its lease run out).

    Collectors that start later see the writer's record, so they are not waited for.
    """
    waiting_for = running_collectors(backend)
    while waiting_for:
        time.sleep(POLL_SECONDS)
        waiting_for &= running_collectors(backend)
