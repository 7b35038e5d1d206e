"""Packs: the builder's layout round-trips, hostile bytes are refused, ranged reads are planned well."""
from __future__ import annotations

import hashlib
import itertools
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import keys, packs
from registry.errors import IntegrityError
from registry.pack_writer import PackUploader
from registry.packs import PackBuilder, Span, index_of_pack, index_size, parse_index, plan_reads, split_span

WHAT = "packs/ab/abc.pack"


def sha(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def bodies(count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 3000)) for _ in range(count)]


def built(chunks: list[bytes]) -> packs.BuiltPack:
    builder = PackBuilder()
    for body in chunks:
        builder.add(sha(body), body)
    return builder.build()


def test_a_pack_round_trips() -> None:
    chunks = bodies(50)
    pack = built(chunks)
    assert pack.pack_id == sha(pack.body)
    assert bytes(pack.body).endswith(pack.index) and len(pack.index) == index_size(pack.index, WHAT)
    assert parse_index(pack.index, WHAT) == index_of_pack(pack.body, WHAT) == pack.entries
    for body in chunks:
        offset, length = pack.entries[sha(body)]
        assert pack.body[offset : offset + length] == body


def test_bodies_come_first_in_the_order_added() -> None:
    chunks = bodies(5, seed=1)
    pack = built(chunks)
    assert pack.body[: sum(map(len, chunks))] == b"".join(chunks)
    assert len(pack.index) == packs.ENTRY.size * 5 + packs.TRAILER_SIZE


def test_the_footer_is_sorted_by_chunk_id_and_the_trailer_ends_with_the_magic() -> None:
    pack = built(bodies(20, seed=2))
    footer = pack.index[: -packs.TRAILER_SIZE]
    ids = [raw for raw, _, _ in struct.iter_unpack("<32sQI", footer)]
    assert ids == sorted(ids) and len(ids) == 20
    footer_sha, body_length, count, magic = struct.unpack("<32sQI8s", pack.index[-packs.TRAILER_SIZE :])
    assert (footer_sha, body_length, count, magic) == (
        hashlib.sha256(footer).digest(), len(pack.body) - len(pack.index), 20, b"RGPACK02")


def test_a_chunk_added_twice_is_stored_once() -> None:
    builder = PackBuilder()
    builder.add(sha(b"same"), b"same")
    builder.add(sha(b"same"), b"same")
    assert (builder.count, builder.size) == (1, 4)


def test_the_builder_starts_afresh_after_build() -> None:
    builder = PackBuilder()
    builder.add(sha(b"one"), b"one")
    first = builder.build()
    assert (builder.count, builder.size) == (0, 0)
    builder.add(sha(b"two"), b"two")
    second = builder.build()
    assert index_of_pack(second.body, WHAT) == {sha(b"two"): (0, 3)}
    assert index_of_pack(first.body, WHAT) == first.entries == {sha(b"one"): (0, 3)}


def test_the_builder_reports_when_full() -> None:
    builder = PackBuilder(target=10)
    builder.add(sha(b"12345"), b"12345")
    assert not builder.full
    builder.add(sha(b"678901"), memoryview(b"678901"))
    assert builder.full and builder.size == 11


def test_empty_chunks_and_an_empty_pack() -> None:
    pack = built([b"", b"x"])
    assert index_of_pack(pack.body, WHAT) == {sha(b""): (0, 0), sha(b"x"): (0, 1)}
    assert index_of_pack(PackBuilder().build().body, WHAT) == {}


@pytest.mark.parametrize("chunk_id", ["ab", "G" * 64, "AB" * 32, " " + "a" * 63])
def test_a_malformed_chunk_id_is_refused_when_added(chunk_id: str) -> None:
    with pytest.raises(ValueError):
        PackBuilder().add(chunk_id, b"x")


def test_index_size_reads_the_trailer_from_a_suffix() -> None:
    pack = built(bodies(30, seed=3))
    suffix = pack.body[-100:]
    assert index_size(suffix, WHAT) == len(pack.index)
    assert parse_index(pack.body[-index_size(suffix, WHAT) :], WHAT) == pack.entries


def reseal(footer: bytes, body_length: int | None = None, count: int | None = None) -> bytes:
    """An index for ``footer`` with a correct footer sha256: tests the checks behind it."""
    count = len(footer) // packs.ENTRY.size if count is None else count
    body_length = 0 if body_length is None else body_length
    return footer + struct.pack("<32sQI8s", hashlib.sha256(footer).digest(), body_length, count, b"RGPACK02")


def entry(body: bytes, offset: int, length: int | None = None) -> bytes:
    return struct.pack("<32sQI", hashlib.sha256(body).digest(), offset, len(body) if length is None else length)


def sorted_entries(*entries: bytes) -> bytes:
    return b"".join(sorted(entries))


SHORT, SIZE, SEAL, ORDER, TILING, END = (
    "shorter than a trailer", "where its trailer says", "footer sha256", "strictly sorted", "overlap or gap",
    "its chunks end at")


def hostile_indexes() -> dict[str, tuple[bytes, str]]:
    """Damaged or forged indexes, each with the words of the check that must catch it."""
    good = built(bodies(4, seed=4)).index
    footer = good[: -packs.TRAILER_SIZE]
    a, b = sorted([b"a", b"b"], key=lambda body: hashlib.sha256(body).digest())
    return {
        "empty": (b"", SHORT),
        "short": (good[-packs.TRAILER_SIZE + 1 :], SHORT),
        "bad magic": (good[:-8] + b"RGPACK01", "ends with b'RGPACK01'"),
        "truncated footer": (good[packs.ENTRY.size :], SIZE),
        "extra byte": (b"\0" + good, SIZE),
        "count too big": (reseal(footer, count=5), SIZE),
        "flipped footer bit": (bytes([good[0] ^ 1]) + good[1:], SEAL),
        "flipped trailer sha": (good[: len(footer)] + bytes([good[len(footer)] ^ 1]) + good[len(footer) + 1 :], SEAL),
        "unsorted ids": (reseal(entry(b, 0) + entry(a, 1), body_length=2), ORDER),
        "duplicate ids": (reseal(entry(a, 0) + entry(a, 1), body_length=2), ORDER),
        "overlapping ranges": (reseal(sorted_entries(entry(a, 0, 2), entry(b, 1, 2)), body_length=3), TILING),
        "gap between chunks": (reseal(sorted_entries(entry(a, 0), entry(b, 2)), body_length=3), TILING),
        "not starting at 0": (reseal(entry(a, 1), body_length=2), TILING),
        "huge offset": (reseal(entry(a, 2**64 - 1), body_length=2**64 - 1), TILING),
        "past the footer": (reseal(sorted_entries(entry(a, 0), entry(b, 1)), body_length=1), END),
        "body longer than chunks": (reseal(entry(a, 0), body_length=5), END),
    }


@pytest.mark.parametrize("name", sorted(hostile_indexes()))
def test_a_hostile_index_is_refused(name: str) -> None:
    data, check = hostile_indexes()[name]
    with pytest.raises(IntegrityError, match=WHAT) as caught:
        parse_index(data, WHAT)
    assert check in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("damage", ["truncated", "extra tail", "extra head", "no index", "index only"])
def test_a_damaged_pack_is_refused(damage: str) -> None:
    pack = built(bodies(6, seed=5))
    body = {
        "truncated": pack.body[1:],
        "extra tail": bytes(pack.body) + b"\0",
        "extra head": b"\0" + pack.body,
        "no index": pack.body[: -len(pack.index)],
        "index only": pack.index[:-1],
    }[damage]
    with pytest.raises(IntegrityError, match=WHAT):
        index_of_pack(body, WHAT)


SMALL_OR_HUGE_U64 = st.one_of(st.integers(0, 20), st.integers(0, 2**64 - 1))
SMALL_OR_HUGE_U32 = st.one_of(st.integers(0, 20), st.integers(0, 2**32 - 1))


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(
    st.binary(max_size=400),
    st.builds(lambda body, cut, junk: body[:cut] + junk + body[cut + len(junk):],
              st.just(built(bodies(3, seed=6)).index), st.integers(0, 250), st.binary(max_size=8)),
    st.builds(lambda raw: raw + b"RGPACK02", st.binary(max_size=200)),
    st.builds(  # sealed (the footer sha256 matches), so the checks behind the seal get the fuzz
        lambda rows, body_length, count: reseal(b"".join(struct.pack("<32sQI", *row) for row in rows),
                                                body_length=body_length, count=count),
        st.lists(st.tuples(st.binary(min_size=32, max_size=32), SMALL_OR_HUGE_U64, SMALL_OR_HUGE_U32), max_size=5),
        SMALL_OR_HUGE_U64, st.one_of(st.none(), st.integers(0, 2**32 - 1))),
))
def test_parse_index_raises_only_integrity_errors(data: bytes) -> None:
    try:
        entries = parse_index(data, WHAT)
    except IntegrityError as e:
        assert WHAT in str(e) and "\n" not in str(e)
    else:
        assert encode_back(entries) == data


def encode_back(entries: dict[str, tuple[int, int]]) -> bytes:
    return packs.encode_index(entries, sum(length for _, length in entries.values()))


# -- ranged reads ------------------------------------------------------------------------------

def layout(lengths: list[int], gaps: list[int]) -> list[tuple[str, int, int]]:
    """Chunks laid out back to back with ``gaps`` between them, as (id, offset, length)."""
    items, offset = [], 0
    for i, (length, gap) in enumerate(zip(lengths, gaps)):
        offset += gap
        items.append((f"{i:064x}", offset, length))
        offset += length
    return items


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5000), st.booleans()), max_size=40),
    st.integers(0, 3000), st.integers(1, 12000), st.randoms(use_true_random=False),
)
def test_plan_reads_covers_each_wanted_chunk_once_within_the_limits(
    shape: list[tuple[int, int, bool]], gap: int, max_span: int, rng: random.Random,
) -> None:
    chunks = layout([length for length, _, _ in shape], [g for _, g, _ in shape])
    wanted = [item for item, (_, _, take) in zip(chunks, shape) if take]
    asked = wanted + rng.sample(wanted, len(wanted) // 3)  # some twice
    rng.shuffle(asked)
    spans = plan_reads(asked, gap=gap, max_span=max_span)

    got = [item for span in spans for item in span.items]
    assert sorted(got) == sorted(set(wanted))
    for span in spans:
        assert span.start == span.items[0][1] and span.end == max(o + n for _, o, n in span.items)
        assert span.end - span.start <= max_span or len(span.items) == 1
        for (_, o1, n1), (_, o2, _) in itertools.pairwise(span.items):
            assert o2 - (o1 + n1) <= gap
    for before, after in itertools.pairwise(spans):
        assert before.end <= after.start
        merged_size = after.end - before.start
        assert after.start - before.end > gap or merged_size > max_span  # no needless split


def test_plan_reads_reads_small_gaps_through_and_splits_big_ones() -> None:
    a, b, c = ("a" * 64, 0, 100), ("b" * 64, 150, 100), ("c" * 64, 10_000, 100)
    assert plan_reads([c, a, b], gap=1000) == [Span(0, 250, (a, b)), Span(10_000, 10_100, (c,))]
    assert plan_reads([a, b, c], gap=10) == [Span(0, 100, (a,)), Span(150, 250, (b,)), Span(10_000, 10_100, (c,))]
    assert plan_reads([a, b], gap=1000, max_span=200) == [Span(0, 100, (a,)), Span(150, 250, (b,))]
    assert plan_reads([]) == []


def test_a_chunk_bigger_than_max_span_is_a_read_of_its_own() -> None:
    big, small = ("b" * 64, 0, 500), ("s" * 64, 500, 10)
    assert plan_reads([big, small], max_span=100) == [Span(0, 500, (big,)), Span(500, 510, (small,))]


def fetched(pack: packs.BuiltPack, span: Span) -> bytes:
    return bytes(pack.body[span.start : span.end])


def test_split_span_yields_the_checked_chunks() -> None:
    chunks = bodies(40, seed=7)
    pack = built(chunks)
    wanted = [(sha(body), *pack.entries[sha(body)]) for body in chunks[::3]]
    got = {cid: bytes(view) for span in plan_reads(wanted, gap=2000)
           for cid, view in split_span(fetched(pack, span), span, WHAT)}
    assert got == {sha(body): body for body in chunks[::3]}


def test_split_span_refuses_a_corrupt_chunk() -> None:
    chunks = bodies(10, seed=8)
    pack = built(chunks)
    [span] = plan_reads([(sha(body), *pack.entries[sha(body)]) for body in chunks if body], gap=10**6)
    data = bytearray(fetched(pack, span))
    data[len(data) // 2] ^= 1
    with pytest.raises(IntegrityError, match=f"{WHAT}.*does not match its sha256"):
        list(split_span(bytes(data), span, WHAT))


@pytest.mark.parametrize("change", [-1, 1])
def test_split_span_refuses_short_or_long_data(change: int) -> None:
    pack = built(bodies(5, seed=9))
    [span] = plan_reads([(cid, *where) for cid, where in pack.entries.items()])
    data = fetched(pack, span)
    data = data[:-1] if change < 0 else data + b"\0"
    with pytest.raises(IntegrityError, match=WHAT):
        list(split_span(data, span, WHAT))


def test_a_chunk_bigger_than_the_room_left_round_trips() -> None:
    """The builder allocates a pack's buffer once; a chunk that does not fit grows it, and so
    does an index that does not fit the headroom left."""
    big, small = random.Random(5).randbytes(packs.HEADROOM + 12345), b"tail"
    builder = PackBuilder(target=1000)
    builder.add(sha(small), small)
    builder.add(sha(big), big)
    pack = builder.build()
    assert pack.body.readonly and pack.pack_id == sha(pack.body)
    assert index_of_pack(pack.body, WHAT) == pack.entries == {sha(small): (0, 4), sha(big): (4, len(big))}
    assert pack.body[4 : 4 + len(big)] == big


class RecordingBackend:
    """Checks, as each pack is written, that the writer's marker already names it."""

    def __init__(self, announced: set[str]) -> None:
        self.announced = announced
        self.objects: dict[str, bytes] = {}

    def write(self, key: str, data: bytes | memoryview, sha256: str | None = None) -> None:
        pack_id = key.rsplit("/", 1)[-1].split(".")[0]
        assert pack_id in self.announced, f"{key} written before its pack was announced"
        if key == keys.pack_index(pack_id):
            assert keys.pack(pack_id) in self.objects, "an index written before its pack"
        self.objects[key] = bytes(data)  # as a store keeps it


def test_every_pack_is_announced_before_it_is_written_and_indexed_after() -> None:
    announced: set[str] = set()
    calls: list[list[str]] = []

    def announce(pack_ids) -> None:
        calls.append(list(pack_ids))
        announced.update(pack_ids)

    backend = RecordingBackend(announced)
    body = random.Random(9).randbytes(1024 * 1024)
    chunk_ids = [sha(str(i).encode()) for i in range(70)]  # ~70 MiB: several packs in flight at once
    with PackUploader(backend, announce=announce) as uploader:  # type: ignore[arg-type]
        for chunk_id in chunk_ids:
            uploader.add(chunk_id, body)
        assert all(uploader.holds(chunk_id) for chunk_id in chunk_ids)
    assert len(uploader.packs) >= 4 and set(uploader.locations) == set(chunk_ids)
    assert sorted(pack for batch in calls for pack in batch) == sorted(uploader.packs)  # each once
    for pack_id in uploader.packs:
        stored, index = backend.objects[keys.pack(pack_id)], backend.objects[keys.pack_index(pack_id)]
        assert sha(stored) == pack_id and stored.endswith(index)
