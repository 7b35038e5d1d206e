"""Format 2's manifest pages, against an in-memory dict of pages: round trips, content-defined
splits (an edit rewrites one page per level), reads that touch only the pages they need, a
builder that streams, and hostile pages refused with one-line errors."""
from __future__ import annotations

import doctest
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import keys, manifest_pages
from registry.errors import IntegrityError, InvalidNameError
from registry.manifest_pages import (
    MAX_DEPTH,
    LeafPage,
    ManifestBuilder,
    ManifestRoot,
    build_manifest,
    find_entry,
    iter_entries,
    manifest_totals,
    page_digests,
)
from registry.names import validate_path_set
from registry.path_order import path_key, range_may_hold
from registry.records import FileEntry, Reference, canonical_json, parse

BIG = 200_000


class Pages(dict[str, bytes]):
    """A store of pages that checks each name, takes each page once, and records each read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def put(self, sha: str, body: bytes) -> None:
        assert hashlib.sha256(body).hexdigest() == sha and sha not in self
        self[sha] = body

    def get(self, sha: str) -> bytes:
        self.reads.append(sha)
        return self[sha]

    def page(self, sha: str) -> dict[str, Any]:
        return json.loads(self[sha])

    def add(self, page: dict[str, Any]) -> str:
        """Store a hand-made page; its name."""
        body = canonical_json(page)
        self[hashlib.sha256(body).hexdigest()] = body
        return hashlib.sha256(body).hexdigest()

    def leaves_read(self) -> list[dict[str, Any]]:
        return [page for page in map(self.page, self.reads) if page["kind"] == "leaf"]


class Tiny(ManifestBuilder):
    """Pages of a few entries, so a few dozen paths make a tree several levels deep."""

    LEAF_BITS, INNER_BITS, LEAF_CAP, INNER_CAP = 1, 1, 4, 3


def sha_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(path: str, size: int = 1, **extra: Any) -> FileEntry:
    return FileEntry(path=path, sha256=sha_of(path), size=size, **extra)


def numbered(count: int) -> Iterator[FileEntry]:
    """``count`` entries in path order, 1,000 to a directory."""
    for i in range(count):
        yield entry(f"data/{i // 1000:04d}/f{i:07d}.bin", size=i % 997)


def build(entries: Iterable[FileEntry], builder: type[ManifestBuilder] = ManifestBuilder) -> tuple[Pages, ManifestRoot]:
    pages = Pages()
    writer = builder(pages.put)
    for item in entries:
        writer.add(item)
    return pages, writer.finish()


def depth(pages: Pages, digest: str) -> int:
    """Pages from the root to a leaf."""
    page = pages.page(digest)
    return page["level"] + 1 if page["kind"] == "inner" else 1


@pytest.fixture(scope="module")
def big() -> tuple[list[FileEntry], Pages, ManifestRoot]:
    entries = list(numbered(BIG))
    pages, root = build(entries)
    return entries, pages, root


# -- round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [0, 1, 5_000])
def test_entries_come_back_in_order_with_their_totals(count: int) -> None:
    entries = list(numbered(count))
    pages, root = build(reversed(list(reversed(entries))))
    assert list(iter_entries(pages.get, root.digest)) == entries
    assert (root.files, root.bytes) == manifest_totals(pages.get, root.digest) == (count, sum(e.size for e in entries))
    if count == 0:
        assert pages == {root.digest: LeafPage(files=()).to_bytes()}  # one empty leaf


def test_200k_entries_come_back_through_a_multi_level_tree(big: tuple[list[FileEntry], Pages, ManifestRoot]) -> None:
    entries, pages, root = big
    assert depth(pages, root.digest) >= 3
    assert list(iter_entries(pages.get, root.digest)) == entries
    assert manifest_totals(pages.get, root.digest) == (BIG, sum(e.size for e in entries)) == (root.files, root.bytes)
    sizes = [len(page["files"]) for page in map(pages.page, pages) if page["kind"] == "leaf"]
    assert sum(sizes) == BIG and 1_000 < sum(sizes) / len(sizes) < 8_000  # ~2,048 on average
    assert max(len(pages.get(page)) for page in pages if pages.page(page)["kind"] == "leaf") < 1_000_000


def test_chunk_lists_and_references_survive_and_pages_are_the_records_canonical_bytes() -> None:
    chunked = entry("a/big.bin", size=300, chunks=((sha_of("c1"), 100), (sha_of("c2"), 200)))
    referenced = entry("b/remote.csv", size=7, ref=Reference(uri="s3://bucket/remote.csv", checksum=False, etag="e1"))
    entries = [chunked, entry("a/small.txt"), referenced, entry("c")]
    pages, root = build(entries)
    assert list(iter_entries(pages.get, root.digest)) == entries
    assert pages[root.digest] == LeafPage(files=tuple(entries)).to_bytes()


def test_every_file_entry_field_reaches_the_page_and_comes_back() -> None:
    """``FileEntry`` serializes itself by hand (``to_json``): a new field must be added there."""
    full = entry("a/big.bin", size=300, chunks=((sha_of("c1"), 300),), ref=Reference(uri="s3://b/k", checksum=True))
    assert set(full.to_json()) == set(FileEntry.__slots__) == {"path", "sha256", "size", "ref", "chunks"}
    assert parse(LeafPage, LeafPage(files=(full,)).to_bytes(), "page").files == (full,)


# -- content-defined pages ----------------------------------------------------------------------
def test_identical_entries_give_identical_pages() -> None:
    first, one = build(numbered(20_000))
    second, two = build(numbered(20_000))
    assert one == two and first == second and len(first) > 3
    tiny_first, tiny_one = build(numbered(300), Tiny)
    tiny_second, tiny_two = build(numbered(300), Tiny)
    assert tiny_one == tiny_two and tiny_first == tiny_second


def batch_digest(entries: list[FileEntry], rules: type[ManifestBuilder]) -> str:
    """The spec's definition, level by level over whole lists: split entries into leaves, then
    each level's pages into pages of the next, until one page is left."""
    def ends(path: str, bits: int) -> bool:
        return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") % (1 << bits) == 0

    def split(items: list[Any], path: Callable[[Any], str], bits: int, cap: int) -> list[list[Any]]:
        groups: list[list[Any]] = [[]]
        for item in items:
            groups[-1].append(item)
            if len(groups[-1]) == cap or ends(path(item), bits):
                groups.append([])
        return [g for g in groups if g]

    def page(body: dict[str, Any], first: str, last: str, files: int, size: int) -> dict[str, Any]:
        return child(hashlib.sha256(canonical_json(body)).hexdigest(), first, last, files, size)

    if not entries:
        return hashlib.sha256(LeafPage(files=()).to_bytes()).hexdigest()
    pages = [page(json.loads(LeafPage(files=tuple(g)).to_bytes()), g[0].path, g[-1].path, len(g), sum(e.size for e in g))
             for g in split(entries, lambda e: e.path, rules.LEAF_BITS, rules.LEAF_CAP)]
    level = 1
    while len(pages) > 1:
        pages = [page(inner(level, *g), g[0]["first"], g[-1]["last"], sum(c["files"] for c in g), sum(c["bytes"] for c in g))
                 for g in split(pages, lambda c: c["last"], rules.LEAF_BITS + rules.INNER_BITS * level, rules.INNER_CAP)]
        level += 1
    return pages[0]["sha256"]


@pytest.mark.parametrize("count", range(0, 80, 3))
def test_the_streaming_builder_gives_the_trees_the_rules_define(count: int) -> None:
    entries = list(numbered(count))
    pages, root = build(entries, Tiny)
    assert root.digest == batch_digest(entries, Tiny)
    assert list(iter_entries(pages.get, root.digest)) == entries
    assert set(page_digests(pages.get, root.digest)) == set(pages)


def test_the_real_rules_give_the_tree_they_define() -> None:
    entries = list(numbered(20_000))
    assert build(entries)[1].digest == batch_digest(entries, ManifestBuilder)


@pytest.mark.parametrize("edit", ["change", "insert"])
def test_one_edit_rewrites_one_page_per_level(edit: str, big: tuple[list[FileEntry], Pages, ManifestRoot]) -> None:
    entries, old, old_root = big
    edited = list(entries)
    middle = BIG // 2 + 17
    if edit == "change":
        edited[middle] = FileEntry(path=entries[middle].path, sha256=sha_of("new bytes"), size=entries[middle].size)
    else:
        edited.insert(middle, entry(entries[middle].path.replace(".bin", ".a.bin")))
    new, new_root = build(edited)
    rewritten = set(new) - set(old)
    assert new_root.digest in rewritten
    levels = depth(old, old_root.digest)
    assert levels <= 4
    if edit == "change":
        assert len(rewritten) == levels
    else:  # unless the new path ends a page, when its leaf becomes two
        assert levels <= len(rewritten) <= levels + 1
    assert sum(len(new.get(page)) for page in rewritten) < 1_000_000  # issue 16: a one-file re-log sends < 1 MB
    around = edited[middle].path.rsplit("/", 1)[0] + "/"
    assert list(iter_entries(new.get, new_root.digest, around)) == [e for e in edited if e.path.startswith(around)]


def test_the_builder_streams_holding_one_leaf_of_entries(big: tuple[list[FileEntry], Pages, ManifestRoot]) -> None:
    """Each leaf is written as soon as its last entry comes, and no entry object is kept."""
    entries, _, root = big
    taken = written = most_pending = kept = 0
    leaves: list[int] = []

    def stream() -> Iterator[FileEntry]:
        nonlocal taken, most_pending, kept
        for item in entries:
            taken += 1
            most_pending = max(most_pending, taken - written)
            before = sys.getrefcount(item)
            yield item
            kept += sys.getrefcount(item) > before + 1  # + build_manifest's loop variable, no more

    def put_page(sha: str, body: bytes) -> None:
        nonlocal written
        page = json.loads(body)
        if page["kind"] == "leaf":
            leaves.append(len(page["files"]))
            written += len(page["files"])

    assert build_manifest(stream(), put_page) == root
    assert len(leaves) > 20 and most_pending <= max(leaves) < BIG // 10
    assert kept == 0


# -- reading only what is needed ----------------------------------------------------------------
valid_paths = st.lists(
    st.lists(st.sampled_from(["a", "ab", "a-b", "a.b", "b", "B", "c", "é", "z"]), min_size=1, max_size=4).map("/".join),
    max_size=60, unique=True)


def a_valid_set(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(paths, key=path_key):
        try:
            validate_path_set([*kept, path])
            kept.append(path)
        except InvalidNameError:
            pass
    return kept


@settings(max_examples=100, deadline=None, database=None)
@given(valid_paths, st.data())
def test_prefix_reads_return_the_filter_and_read_only_leaves_that_can_match(paths: list[str], data: st.DataObject) -> None:
    entries = [entry(p) for p in a_valid_set(paths)]
    base = data.draw(st.sampled_from([e.path for e in entries] or [""]))
    prefix = data.draw(st.one_of(st.integers(0, len(base)).map(lambda n: base[:n]), st.text("abB-./z", max_size=5)))
    pages, root = build(entries, Tiny)
    found = list(iter_entries(pages.get, root.digest, prefix))
    assert found == [e for e in entries if e.path.startswith(prefix)]
    below_the_root = pages.leaves_read() if len(pages) > 1 else []
    for leaf in below_the_root:
        assert range_may_hold(leaf["files"][0]["path"], leaf["files"][-1]["path"], prefix)


def test_a_prefix_read_of_one_directory_reads_a_few_leaves(big: tuple[list[FileEntry], Pages, ManifestRoot]) -> None:
    entries, pages, root = big
    pages.reads.clear()
    found = list(iter_entries(pages.get, root.digest, "data/0123/"))
    assert found == [e for e in entries if e.path.startswith("data/0123/")] and len(found) == 1000
    assert len(pages.leaves_read()) <= 3
    assert len(pages.reads) <= depth(pages, root.digest) + 2


def test_find_entry_reads_one_page_per_level(big: tuple[list[FileEntry], Pages, ManifestRoot]) -> None:
    entries, pages, root = big
    levels = depth(pages, root.digest)
    for wanted in (entries[0], entries[77_777], entries[-1]):
        pages.reads.clear()
        assert find_entry(pages.get, root.digest, wanted.path) == wanted
        assert len(pages.reads) == levels
    for absent in ("", "a", "data/0000/f", "data/0077/f0077777.bin.x", "zzz"):
        assert find_entry(pages.get, root.digest, absent) is None


def test_totals_read_the_root_alone(big: tuple[list[FileEntry], Pages, ManifestRoot]) -> None:
    _, pages, root = big
    pages.reads.clear()
    assert manifest_totals(pages.get, root.digest) == (root.files, root.bytes)
    assert pages.reads == [root.digest]


@pytest.mark.parametrize("builder", [ManifestBuilder, Tiny])
def test_page_digests_lists_every_page_reading_no_leaf(builder: type[ManifestBuilder]) -> None:
    pages, root = build(numbered(20_000 if builder is ManifestBuilder else 200), builder)
    listed = list(page_digests(pages.get, root.digest))
    assert listed[0] == root.digest and len(listed) == len(set(listed)) and set(listed) == set(pages)
    assert depth(pages, root.digest) >= 2 and pages.leaves_read() == []


def test_page_digests_of_a_one_leaf_manifest_is_its_root() -> None:
    pages, root = build(numbered(3))
    assert list(page_digests(pages.get, root.digest)) == [root.digest]


# -- hostile pages ------------------------------------------------------------------------------
def leaf(*paths: str, sizes: Iterable[int] | None = None) -> dict[str, Any]:
    sizes = list(sizes) if sizes is not None else [1] * len(paths)
    return {"schema": 2, "kind": "leaf",
            "files": [{"path": p, "sha256": sha_of(p), "size": s} for p, s in zip(paths, sizes)]}


def child(sha: str, first: str, last: str, files: int, size: int) -> dict[str, Any]:
    return {"sha256": sha, "first": first, "last": last, "files": files, "bytes": size}


def inner(level: int, *children: dict[str, Any]) -> dict[str, Any]:
    return {"schema": 2, "kind": "inner", "level": level, "children": list(children)}


def two_leaves(pages: Pages, left: dict[str, Any], right: dict[str, Any],
               lie: Callable[[dict[str, Any]], None] = lambda c: None) -> tuple[str, str]:
    """A root over two leaves as the builder would describe them, then ``lie`` about the right one."""
    described = []
    for page in (left, right):
        paths = [f["path"] for f in page["files"]]
        described.append(child(pages.add(page), paths[0], paths[-1], len(paths), sum(f["size"] for f in page["files"])))
    lie(described[1])
    return pages.add(inner(1, *described)), described[1]["sha256"]


def truncated(pages: Pages) -> tuple[str, str]:
    body = canonical_json(leaf("a"))
    sha = hashlib.sha256(body).hexdigest()
    pages[sha] = body[:-3]
    return sha, sha


def unknown_kind(pages: Pages) -> tuple[str, str]:
    sha = pages.add({**leaf("a"), "kind": "branch"})
    return sha, sha


def schema_1(pages: Pages) -> tuple[str, str]:
    sha = pages.add({**leaf("a"), "schema": 1})
    return sha, sha


def unsafe_path(pages: Pages) -> tuple[str, str]:
    sha = pages.add(leaf("a", "../b"))
    return sha, sha


def leaf_out_of_order(pages: Pages) -> tuple[str, str]:
    sha = pages.add(leaf("b", "a"))
    return sha, sha


def file_is_also_a_directory(pages: Pages) -> tuple[str, str]:
    sha = pages.add(leaf("a", "a/b"))
    return sha, sha


def twins_across_leaves(pages: Pages) -> tuple[str, str]:
    return two_leaves(pages, leaf("A", "B"), leaf("a"))


def children_overlap(pages: Pages) -> tuple[str, str]:
    one, two = pages.add(leaf("a", "c")), pages.add(leaf("b", "d"))
    sha = pages.add(inner(1, child(one, "a", "c", 2, 2), child(two, "b", "d", 2, 2)))
    return sha, sha


def range_lies(pages: Pages) -> tuple[str, str]:
    return two_leaves(pages, leaf("a"), leaf("b", "d"), lambda c: c.update(last="c"))


def leaf_outside_range(pages: Pages) -> tuple[str, str]:
    return two_leaves(pages, leaf("a"), leaf("b", "c"), lambda c: c.update(first="bb"))


def count_lies(pages: Pages) -> tuple[str, str]:
    return two_leaves(pages, leaf("a"), leaf("b", "c"), lambda c: c.update(files=3))


def bytes_lie(pages: Pages) -> tuple[str, str]:
    return two_leaves(pages, leaf("a"), leaf("b", "c"), lambda c: c.update(bytes=1))


def level_lies(pages: Pages) -> tuple[str, str]:
    under = pages.add(leaf("a"))
    sha = pages.add(inner(2, child(under, "a", "a", 1, 1)))
    return sha, under


def too_deep(pages: Pages) -> tuple[str, str]:
    under = pages.add(leaf("a"))
    sha = pages.add(inner(MAX_DEPTH, child(under, "a", "a", 1, 1)))
    return sha, sha


@pytest.mark.parametrize("hostile", [
    truncated, unknown_kind, schema_1, unsafe_path, leaf_out_of_order, file_is_also_a_directory,
    twins_across_leaves, children_overlap, range_lies, leaf_outside_range, count_lies, bytes_lie, level_lies,
    too_deep,
])
def test_a_hostile_page_is_refused_naming_it(hostile: Callable[[Pages], tuple[str, str]]) -> None:
    pages = Pages()
    root, bad = hostile(pages)
    with pytest.raises(IntegrityError, match=keys.blob(bad)) as raised:
        list(iter_entries(pages.get, root))
    assert "\n" not in str(raised.value)


def test_a_missing_page_fails_as_the_store_says() -> None:
    pages = Pages()
    root, _ = two_leaves(pages, leaf("a"), leaf("b"))
    del pages[pages.page(root)["children"][1]["sha256"]]
    with pytest.raises(KeyError):
        list(iter_entries(pages.get, root))
    with pytest.raises(KeyError):
        find_entry(pages.get, root, "b")


# -- what the builder refuses -------------------------------------------------------------------
@pytest.mark.parametrize(("paths", "says"), [
    (["b", "a"], "comes after"),
    (["a", "a"], "twice"),
    (["a", "a/b"], "is a file but"),
    (["Data/x", "Zed", "data/y"], "collide"),
])
def test_the_builder_refuses_what_a_file_list_refuses(paths: list[str], says: str) -> None:
    builder = ManifestBuilder(Pages().put)
    with pytest.raises(InvalidNameError, match=says):
        for path in paths:
            builder.add(entry(path))


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(manifest_pages).failed == 0
