"""The writer's side of format 2: cut large files into chunks, learn which chunks the store
holds, and send the rest in packs.

Which chunks the store holds is learnt without a request per chunk: the packs the previous
version names (a few small index GETs), then the store's pack indexes (``index/``, kept on
this machine once read), then, for files stored whole, the format-1 blobs. Every chunk sent is
hashed on the very bytes that go into the pack, so a file that changed after it was added
fails the log before any record names it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import chunking
from .blobs import BlobStore
from .chunk_memory import ChunkMemory
from .errors import IntegrityError, NotFoundError
from .hashing import sha256_bytes
from .pack_locations import PackIndexes
from .pack_writer import PackUploader
from .records import FileEntry


def _to_cut(entry: FileEntry, sources: Mapping[str, Path]) -> bool:
    return entry.ref is None and entry.chunks is None and entry.size >= chunking.SMALL_FILE_MAX \
        and entry.sha256 in sources


def needs_cutting(entries: list[FileEntry], sources: Mapping[str, Path], memory: ChunkMemory) -> bool:
    """Whether a large file among ``entries`` has no remembered chunk list (it must be read)."""
    return any(_to_cut(e, sources) and memory.get(e.sha256, chunking.CHUNK_PARAMS) is None for e in entries)


def with_chunks(entries: list[FileEntry], sources: Mapping[str, Path], memory: ChunkMemory,
                on_chunk: chunking.OnChunk | None = None) -> list[FileEntry]:
    """Entries of large files gain their chunk lists (remembered by sha256, else cut now, each
    chunk handed to ``on_chunk`` as it is cut)."""
    out = []
    for entry in entries:
        if _to_cut(entry, sources):
            chunks = memory.get(entry.sha256, chunking.CHUNK_PARAMS)
            if chunks is None:
                cut = chunking.chunk_file(sources[entry.sha256], on_chunk=on_chunk)
                if cut.sha256 != entry.sha256:
                    raise _changed(sources[entry.sha256], entry.sha256)
                chunks = cut.chunks
                memory.put(entry.sha256, chunking.CHUNK_PARAMS, chunks)
            entry = entry.replace(chunks=chunks)
        out.append(entry)
    return out


@dataclass
class ChunkPlan:
    """What the store holds of a version's chunks, and what must be sent."""

    loose: set[str]
    """Files stored whole that the store holds as format-1 blobs."""
    new: set[str]
    relied_packs: set[str] = field(default_factory=set)
    """The packs holding the chunks the store held already."""


def plan_chunks(indexes: PackIndexes, blobs: BlobStore, entries: list[FileEntry], hints: Iterable[str],
                sources: Mapping[str, Path], look_for_loose: bool = True,
                sent: Callable[[str], bool] | None = None) -> ChunkPlan:
    """Find every chunk of ``entries`` in the store; those found nowhere must come from ``sources``.
    ``sent``: chunks this writer has packed already. ``look_for_loose``: also look for format-1
    blobs of files stored whole (worth it where the artifact has format-1 history: a HEAD or a
    listing, where a packed history makes it waste)."""
    wanted = {chunk for e in entries for chunk, _ in e.chunk_list()}
    if sent is not None:  # packed by this writer already (while cutting): nothing to look for
        wanted = {chunk for chunk in wanted if not sent(chunk)}
    new = wanted  # in place: a million-chunk set is not copied twice more
    relied_packs = indexes.take_found(new, hints)
    loose: set[str] = set()
    if look_for_loose:
        looked_for = {e.sha256 for e in entries if e.chunks is None and e.sha256 in new}
        loose = looked_for - blobs.missing_loose(looked_for) if looked_for else set()
        new.difference_update(loose)
    held = [e for e in entries if _any_new(e, new) and e.sha256 not in sources]
    if held:
        paths = sorted(e.path for e in held)
        raise NotFoundError(
            f"{len(paths)} file(s) kept from an earlier version are no longer in the store: "
            f"{', '.join(paths[:5])}; add them again from local files"
        )
    return ChunkPlan(loose, new, relied_packs)


def _any_new(entry: FileEntry, new: set[str]) -> bool:
    return entry.sha256 in new if entry.chunks is None else any(chunk in new for chunk, _ in entry.chunks)


def pack_if_new(indexes: PackIndexes, uploader: PackUploader, progress=None) -> chunking.OnChunk:
    """An ``on_chunk`` for cutting files: packs each chunk no loaded pack index holds (and
    counts its bytes to ``progress``, as ``send_chunks`` does)."""

    def take(chunk_id: str, data: memoryview) -> None:
        if not uploader.holds(chunk_id) and not indexes.holds(chunk_id):
            uploader.add(chunk_id, data)
            if progress:
                progress(len(data))

    return take


def send_chunks(uploader: PackUploader, entries: list[FileEntry], sources: Mapping[str, Path],
                new: set[str], progress=None) -> None:
    """Pack and upload the ``new`` chunks (those the uploader does not hold already), read from the
    source files and checked on the way."""
    for entry in entries:  # a file repeated in the artifact is sent once: the uploader holds it then
        if not _any_new(entry, new) or all(uploader.holds(c) for c, _ in entry.chunk_list()):
            continue
        path = sources[entry.sha256]
        if entry.chunks is None:
            data = _read(path)
            if sha256_bytes(data) != entry.sha256:
                raise _changed(path, entry.sha256)
            uploader.add(entry.sha256, data)
            if progress:
                progress(len(data))
            continue
        for chunk, view in chunking.iter_chunk_bytes(path, entry.chunks, only=new):  # each checked
            uploader.add(chunk, view)  # copied into the pack before the next chunk is read
            if progress:
                progress(len(view))


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _changed(path: Path, sha256: str) -> IntegrityError:
    return IntegrityError(
        f"{path} changed after it was added (its bytes no longer match the sha256 recorded then, "
        f"{sha256[:12]}...): nothing was logged; add it again once nothing is writing to it"
    )
