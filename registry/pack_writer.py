"""Sending new chunks to the store in packs (format 2): one writer's packs are its own.

Chunks are appended to a pack in memory; once it reaches ``packs.PACK_TARGET`` it is uploaded
under the sha256 of its bytes (which the server checks), then its index, while the next pack
fills. At most ``IN_FLIGHT`` packs wait for the network, so memory stays bounded by a few
packs whatever the artifact's size. A pack is never visible half-written (one PUT each), and
an index is written only after its pack, so every index names a pack that was complete.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from backends import Backend

from . import keys
from .pack_locations import Location
from .packs import BuiltPack, PackBuilder

IN_FLIGHT = 3
"""Packs uploading at once (each ~16 MiB): enough to keep the server busy, little memory."""


class PackUploader:
    """Collects chunks the store lacks into packs and uploads them as they fill.

    >>> with PackUploader(backend) as uploader:     # doctest: +SKIP
    ...     uploader.add(chunk_id, data)
    ... locations = uploader.locations               # every chunk added, once closed
    """

    def __init__(self, backend: Backend, in_flight: int = IN_FLIGHT,
                 announce: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.in_flight = in_flight
        self.announce = announce
        """Called with each pack's id before it is uploaded: a writer names it in its in-flight
        marker, so a collector never takes a pack that no record references *yet*."""
        self.locations: dict[str, Location] = {}
        self.packs: list[str] = []
        self.bytes_sent = 0
        self._builder = PackBuilder()
        self._building: set[str] = set()
        self._pending: deque[Future] = deque()
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="registry-pack")

    def __enter__(self) -> PackUploader:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.finish()
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)

    def finish(self) -> None:
        """Upload the last pack and wait for every upload: call before a record names the packs."""
        self._flush()
        while self._pending:
            self._pending.popleft().result()

    def holds(self, chunk_id: str) -> bool:
        """Whether this writer already packed the chunk (a file repeated in the artifact)."""
        return chunk_id in self.locations or chunk_id in self._building

    def add(self, chunk_id: str, data: bytes | memoryview) -> None:
        """Pack a chunk whose bytes the caller has just checked against ``chunk_id``."""
        if self.holds(chunk_id):
            return
        self._builder.add(chunk_id, data)
        self._building.add(chunk_id)
        if self._builder.full:
            self._flush()

    def _flush(self) -> None:
        if not self._builder.count:
            return
        built = self._builder.build()
        self._builder, self._building = PackBuilder(), set()
        for chunk_id, (offset, length) in built.entries.items():
            self.locations[chunk_id] = Location(built.pack_id, offset, length)
        self.packs.append(built.pack_id)
        if self.announce is not None:
            self.announce(built.pack_id)
        self.bytes_sent += len(built.body) + len(built.index)
        while len(self._pending) >= self.in_flight:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._upload, built))

    def _upload(self, built: BuiltPack) -> None:
        self.backend.write(keys.pack(built.pack_id), built.body, sha256=built.pack_id)
        self.backend.write(keys.pack_index(built.pack_id), built.index)
