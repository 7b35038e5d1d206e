"""Sending new chunks to the store in packs (format 2): one writer's packs are its own.

Chunks are appended to a pack in memory; once it reaches ``packs.PACK_TARGET`` it is handed to
an upload thread, which names it (the sha256 of its bytes), announces it and uploads it, then
its index, while the caller goes on filling the next pack: the caller's thread only copies
bytes. At most ``IN_FLIGHT`` packs wait for the network, so memory stays bounded by a few
packs whatever the artifact's size. A pack is never visible half-written (one PUT each), and
an index is written only after its pack, so every index names a pack that was complete.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from backends import Backend

from . import keys
from .pack_locations import Location
from .packs import BuiltPack, Entries, PackBuilder

IN_FLIGHT = 3
"""Packs uploading at once (each ~16 MiB): enough to keep the server busy, little memory."""

Announce = Callable[[Iterable[str]], None]


class PackUploader:
    """Collects chunks the store lacks into packs and uploads them as they fill.

    >>> with PackUploader(backend) as uploader:     # doctest: +SKIP
    ...     uploader.add(chunk_id, data)
    ... locations = uploader.locations               # every chunk added, once closed
    """

    def __init__(self, backend: Backend, in_flight: int = IN_FLIGHT, announce: Announce | None = None,
                 written: Callable[[BuiltPack], None] | None = None,
                 crash: Callable[[str], None] | None = None) -> None:
        self.backend = backend
        self.crash = crash
        """Tests stop the writer at ``"after-pack"``: a pack uploaded, its index not yet."""
        self.in_flight = in_flight
        self.written = written
        """Called (in the caller's thread) with each pack once it and its index are uploaded."""
        self.announce = announce
        """Called with pack ids before those packs are uploaded: a writer names them in its
        in-flight marker, so a collector never takes a pack that no record references *yet*.
        Packs sealed while one announcement is being written go together in the next."""
        self._uploaded: list[tuple[str, Entries]] = []  # (pack id, its entries), not its bytes
        self.packs: list[str] = []
        self.bytes_sent = 0
        self._builder = PackBuilder()
        self._packed: set[str] = set()  # every chunk added, whether its pack is filling, in flight or sent
        self._pending: deque[Future[BuiltPack]] = deque()
        self._sealed: set[str] = set()  # packs named so far (announced or about to be)
        self._announced: set[str] = set()
        self._sealing = threading.Lock()
        self._announcing = threading.Lock()
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
            self._settle(self._pending.popleft())

    @property
    def locations(self) -> dict[str, Location]:
        """Every chunk of the packs uploaded so far (all of them once ``finish`` returns); made when
        asked, so a writer of a million chunks holds only the packs' own entries."""
        return {chunk_id: Location(pack_id, offset, length)
                for pack_id, entries in self._uploaded for chunk_id, (offset, length) in entries.items()}

    def holds(self, chunk_id: str) -> bool:
        """Whether this writer already packed the chunk (a file repeated in the artifact)."""
        return chunk_id in self._packed

    def add(self, chunk_id: str, data: bytes | memoryview) -> None:
        """Pack a chunk whose bytes the caller has just checked against ``chunk_id``."""
        if chunk_id in self._packed:
            return
        self._builder.add(chunk_id, data)
        self._packed.add(chunk_id)
        if self._builder.full:
            self._flush()

    def _flush(self) -> None:
        if not self._builder.count:
            return
        builder, self._builder = self._builder, PackBuilder()
        while len(self._pending) >= self.in_flight:
            self._settle(self._pending.popleft())
        self._pending.append(self._pool.submit(self._upload, builder))

    def _settle(self, future: Future[BuiltPack]) -> None:
        built = future.result()
        self._uploaded.append((built.pack_id, built.entries))
        self.packs.append(built.pack_id)
        self.bytes_sent += len(built.body) + len(built.index)
        if self.written is not None:
            self.written(built)

    def _upload(self, builder: PackBuilder) -> BuiltPack:
        built = builder.build()  # hashed here: the caller's thread goes on cutting meanwhile
        self._announce(built.pack_id)
        self.backend.write(keys.pack(built.pack_id), built.body, sha256=built.pack_id)
        if self.crash is not None:
            self.crash("after-pack")
        self.backend.write(keys.pack_index(built.pack_id), built.index)
        return built

    def _announce(self, pack_id: str) -> None:
        if self.announce is None:
            return
        with self._sealing:
            self._sealed.add(pack_id)
        with self._announcing:  # one marker write at a time, each naming every pack sealed by then
            if pack_id in self._announced:
                return
            with self._sealing:
                batch = sorted(self._sealed - self._announced)
            self.announce(batch)
            self._announced.update(batch)
