"""Content-defined chunking: deterministic, one read, and edits change only the chunks near them."""
from __future__ import annotations

import bisect
import hashlib
import random
from pathlib import Path

import pytest

from registry import chunking
from registry.chunking import SIZES, ChunkSizes, chunk_bytes, chunk_file, iter_chunk_bytes
from registry.errors import IntegrityError

MIB = 1024 * 1024
SMALL_SIZES = ChunkSizes(2048, 8192, 32768)
"""Many more chunks per MiB than the real sizes, so locality is tested on hundreds of chunks."""
SIZE_CASES = pytest.mark.parametrize("sizes", [SIZES, SMALL_SIZES], ids=["real", "small"])


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def spans(chunks: tuple[tuple[str, int], ...]) -> list[tuple[int, int, str]]:
    """(start, end, id) of each chunk in file order."""
    out, offset = [], 0
    for chunk_id, length in chunks:
        out.append((offset, offset + length, chunk_id))
        offset += length
    return out


def overlapping(chunks: tuple[tuple[str, int], ...], ranges: list[tuple[int, int]]) -> set[int]:
    """Indexes of the chunks that share a byte with any of ``ranges``."""
    starts = [start for start, _, _ in spans(chunks)]
    return {i for start, end in ranges
            for i in range(bisect.bisect_right(starts, start) - 1, bisect.bisect_right(starts, end - 1))}


def lost_chunks(before: tuple[tuple[str, int], ...], after: tuple[tuple[str, int], ...]) -> set[int]:
    """Indexes of the chunks of ``before`` that ``after`` lacks (the store would need new ones)."""
    kept = {chunk_id for chunk_id, _ in after}
    return {i for i, (chunk_id, _) in enumerate(before) if chunk_id not in kept}


def test_chunks_rebuild_the_bytes_and_name_them_by_sha256() -> None:
    data = random_bytes(5 * MIB)
    chunked = chunk_bytes(data)
    assert chunked.sha256 == sha(data) and chunked.size == len(data)
    assert b"".join(data[s:e] for s, e, _ in spans(chunked.chunks)) == data
    assert all(chunk_id == sha(data[s:e]) for s, e, chunk_id in spans(chunked.chunks))
    assert len(chunked.chunks) > 1 and chunked.manifest_chunks == chunked.chunks


@SIZE_CASES
def test_chunk_lengths_stay_within_the_bounds(sizes: ChunkSizes) -> None:
    lengths = [length for _, length in chunk_bytes(random_bytes(6 * MIB, seed=3), sizes=sizes).chunks]
    assert all(sizes.min <= length <= sizes.max for length in lengths[:-1])
    assert 0 < lengths[-1] <= sizes.max


def test_same_bytes_give_the_same_chunks() -> None:
    data = random_bytes(4 * MIB, seed=1)
    assert chunk_bytes(data) == chunk_bytes(bytearray(data)) == chunk_bytes(memoryview(data))


def test_chunk_sizes_change_the_cuts() -> None:
    data = random_bytes(4 * MIB, seed=2)
    assert chunk_bytes(data).chunks != chunk_bytes(data, sizes=SMALL_SIZES).chunks


@pytest.mark.parametrize("size", [
    MIB, MIB + 1, 3 * MIB + 12345, 9 * MIB, 12 * MIB + 1,
])
@pytest.mark.parametrize("block", [3 * MIB + 1, 4 * MIB, chunking.READ_BLOCK])
def test_chunk_file_equals_chunk_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, block: int) -> None:
    """Reading block by block (carrying unfinished chunks over) cuts exactly where one pass over
    the whole buffer does, at every block size."""
    monkeypatch.setattr(chunking, "READ_BLOCK", block)
    data = random_bytes(size, seed=size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for sizes in (SIZES, SMALL_SIZES):
        assert chunk_file(path, sizes=sizes) == chunk_bytes(data, sizes=sizes)


@pytest.mark.parametrize("size", [0, 1, 4096, MIB - 1])
def test_small_files_are_one_chunk_named_by_their_sha256(tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=7)
    path = tmp_path / "small"
    path.write_bytes(data)
    chunked = chunk_file(path)
    assert chunked == chunk_bytes(data)
    assert chunked.sha256 == sha(data) and chunked.size == size
    assert chunked.chunks == ((sha(data), size),) and chunked.manifest_chunks is None


def test_a_file_of_exactly_small_file_max_is_chunked() -> None:
    data = random_bytes(chunking.SMALL_FILE_MAX, seed=8)
    assert chunk_bytes(data).manifest_chunks is not None


@SIZE_CASES
def test_overwrites_change_only_the_chunks_they_touch(sizes: ChunkSizes) -> None:
    """Each edited chunk is replaced; any other chunk lost is the one right after an edited
    chunk (its start may move; the cuts fall back into step within a chunk)."""
    rng = random.Random(11)
    data = bytearray(random_bytes(8 * MIB, seed=11))
    before = chunk_bytes(bytes(data), sizes=sizes).chunks
    edits = [(at, at + 1024) for at in (rng.randrange(len(data) - 1024) for _ in range(10))]
    for start, end in edits:
        data[start:end] = rng.randbytes(end - start)
    after = chunk_bytes(bytes(data), sizes=sizes).chunks

    edited = overlapping(before, edits)
    assert edited <= lost_chunks(before, after) <= edited | {i + 1 for i in edited}
    if sizes == SMALL_SIZES:
        assert len(lost_chunks(before, after)) < len(before) // 10


@SIZE_CASES
def test_an_insertion_changes_only_the_chunks_around_it(sizes: ChunkSizes) -> None:
    """Unlike fixed-size blocks, the chunks after an insertion are found again, shifted."""
    data = random_bytes(8 * MIB, seed=12)
    middle = len(data) // 2
    edited = data[:middle] + random_bytes(1024, seed=13) + data[middle:]
    before, after = chunk_bytes(data, sizes=sizes).chunks, chunk_bytes(edited, sizes=sizes).chunks

    hit = overlapping(before, [(middle - 1, middle + 1)])
    lost = lost_chunks(before, after)
    assert hit <= lost <= hit | {i + 1 for i in hit}
    old = {chunk_id for chunk_id, _ in before}
    new_bytes = sum(length for chunk_id, length in after if chunk_id not in old)
    assert new_bytes <= 1024 + sum(before[i][1] for i in lost)


def test_iter_chunk_bytes_yields_each_chunk_in_order(tmp_path: Path) -> None:
    data = random_bytes(5 * MIB, seed=4)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    chunks = chunk_file(path).chunks
    got = [(chunk_id, bytes(body)) for chunk_id, body in iter_chunk_bytes(path, chunks)]  # views: copied
    assert [chunk_id for chunk_id, _ in got] == [chunk_id for chunk_id, _ in chunks]
    assert b"".join(body for _, body in got) == data


def test_iter_chunk_bytes_reads_only_the_chunks_asked_for(tmp_path: Path) -> None:
    data = random_bytes(5 * MIB, seed=5)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    chunks = chunk_file(path).chunks
    only = {chunks[1][0], chunks[-1][0]}
    got = {chunk_id: bytes(body) for chunk_id, body in iter_chunk_bytes(path, chunks, only=only)}
    assert set(got) == only and all(sha(body) == chunk_id for chunk_id, body in got.items())


def test_iter_chunk_bytes_of_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.write_bytes(b"hello")
    got = [(chunk_id, bytes(body)) for chunk_id, body in iter_chunk_bytes(path, chunk_file(path).chunks)]
    assert got == [(sha(b"hello"), b"hello")]


@pytest.mark.parametrize("change", ["overwrite", "truncate"])
def test_iter_chunk_bytes_refuses_a_file_changed_since_chunked(tmp_path: Path, change: str) -> None:
    data = random_bytes(3 * MIB, seed=6)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    chunks = chunk_file(path).chunks
    path.write_bytes(data[:-10] + b"x" * 10 if change == "overwrite" else data[: 2 * MIB])
    with pytest.raises(IntegrityError, match="changed after it was chunked"):
        list(iter_chunk_bytes(path, chunks))


def test_on_chunk_sees_every_chunk_in_file_order_with_its_bytes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are hashed in other threads, yet handed over in file order, each with its own bytes
    (a writer packs exactly what it names), across block boundaries."""
    monkeypatch.setattr(chunking, "READ_BLOCK", 3 * MIB + 1)
    data = random_bytes(10 * MIB + 777, seed=3)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[tuple[str, bytes]] = []
    chunked = chunk_file(path, sizes=SMALL_SIZES, on_chunk=lambda cid, view: seen.append((cid, bytes(view))))
    assert [cid for cid, _ in seen] == [cid for cid, _ in chunked.chunks]
    assert all(sha(body) == cid for cid, body in seen)
    assert b"".join(body for _, body in seen) == data


def test_iter_chunk_bytes_reads_neighbours_together_and_skips_gaps(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Wanted chunks are read in runs of at most ``READ_BLOCK`` bytes; each is checked and exact."""
    monkeypatch.setattr(chunking, "READ_BLOCK", MIB + 1)
    data = random_bytes(6 * MIB + 99, seed=8)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    chunks = chunk_file(path, sizes=SMALL_SIZES).chunks
    only = {chunk_id for i, (chunk_id, _) in enumerate(chunks) if i % 3 != 1}
    got = {chunk_id: bytes(body) for chunk_id, body in iter_chunk_bytes(path, chunks, only=only)}
    starts = {chunk_id: start for start, _, chunk_id in spans(chunks)}
    assert set(got) == only
    assert all(body == data[starts[cid] : starts[cid] + len(body)] and sha(body) == cid for cid, body in got.items())
