"""Format 2's manifest: a version's file entries as a tree of content-named pages.

A leaf page lists file entries in ``path_order.path_key`` order; an inner page lists its
children with their first and last paths, file counts and byte totals. Pages are canonical
JSON named by their sha256 and stored as ordinary blobs (``keys.blob``); the root's sha256 is
the version's digest.

Where pages split depends only on the paths there, never on position, so identical entries
give identical pages (dedup by digest keeps working) and one edited file rewrites its leaf and
the pages above it. A path's *height* is the number of zero bits at the low end of the first
8 bytes of its sha256; a page at level L (0: a leaf) ends after an entry or child whose (last)
path is at least ``LEAF_BITS + INNER_BITS * L`` high (about 2,048 entries per leaf, 32
children per inner page), or when it is full (8,192 entries, 1,024 children): a leaf is ~200 KB
on average and under ~1 MB, so one changed file of a million uploads under 1 MB of pages. Levels are
built until one has a single page, the root: a manifest that fits one leaf has it as its root,
an empty one is one empty leaf. Each level needs higher paths than the one below, as in a skip
list: the paths that end leaves all have 11 zero bits, so "5 zero bits" alone would end an
inner page after every child. These numbers are part of the format: other numbers give other
digests, and dedup against earlier versions would stop.

This module never touches a store: a builder hands each page to ``put_page``, readers get
verified bytes from ``get_page`` and check the structure themselves.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from . import keys
from .errors import IntegrityError, InvalidNameError
from .names import validate_digest, validate_path
from .path_order import SortedPaths, path_key, prefix_side, range_may_hold
from .records import FileEntry, Record, canonical_json, parse

PutPage = Callable[[str, bytes], None]
"""Called with (sha256, body) for each page built; the caller stores those the store lacks."""
GetPage = Callable[[str], bytes]
"""Returns a page's bytes, already checked against its sha256, or raises if it cannot."""

MAX_DEPTH = 32
"""Pages from the root to a leaf; a 32-child tree of 2,048-entry leaves is ~7 deep for 10^12 files."""


class PageChild(BaseModel):
    """One child of an inner page, with what a reader needs to skip it or to total it."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    sha256: str
    first: str
    last: str
    files: int = Field(ge=1)
    bytes: int = Field(ge=0)

    @field_validator("sha256")
    @classmethod
    def _sha(cls, value: str) -> str:
        return validate_digest(value)

    @field_validator("first", "last")
    @classmethod
    def _path(cls, value: str) -> str:
        return validate_path(value)  # ``path_key`` order holds only for valid paths


class LeafPage(Record):
    SCHEMAS: ClassVar[tuple[int, ...]] = (2,)
    schema_version: int = Field(default=2, alias="schema")
    kind: Literal["leaf"] = "leaf"
    files: tuple[FileEntry, ...]


class InnerPage(Record):
    SCHEMAS: ClassVar[tuple[int, ...]] = (2,)
    schema_version: int = Field(default=2, alias="schema")
    kind: Literal["inner"] = "inner"
    level: int = Field(ge=1)
    """1: the children are leaves; L: they are inner pages of level L - 1. Lets ``page_digests``
    list a tree without reading its leaves, and bounds a reader's depth from the root alone."""
    children: tuple[PageChild, ...] = Field(min_length=1)


class _Page(RootModel[Annotated[LeafPage | InnerPage, Field(discriminator="kind")]]):
    pass


@dataclass(frozen=True)
class ManifestRoot:
    digest: str
    """The root page's sha256: a format-2 version record's ``digest``."""
    files: int
    bytes: int


def _ends_page(path: str, zero_bits: int) -> bool:
    head = int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big")
    return head & ((1 << zero_bits) - 1) == 0


class ManifestBuilder:
    """Builds the pages of a manifest from entries given in ``path_key`` order, holding one
    leaf's entries (as JSON) and one unfinished page per level, never the whole list.

    >>> store = {}
    >>> root = build_manifest([FileEntry(path="a.txt", sha256="0" * 64, size=1)], store.__setitem__)
    >>> (root.files, root.bytes, list(store) == [root.digest])
    (1, 1, True)
    """

    LEAF_BITS: ClassVar[int] = 11
    INNER_BITS: ClassVar[int] = 5
    LEAF_CAP: ClassVar[int] = 8_192
    INNER_CAP: ClassVar[int] = 1_024

    def __init__(self, put_page: PutPage) -> None:
        self._put_page = put_page
        self._paths = SortedPaths()
        self._leaf: list[dict[str, Any]] = []
        """The unfinished leaf's entries as JSON values: plain dicts, not models, are a third
        cheaper to hold (the garbage collector does not track them), and the entries can go."""
        self._open: list[list[PageChild]] = []
        """``_open[L - 1]``: the children so far of the unfinished page at level L."""
        self._first: list[PageChild | None] = []
        """``_first[L]``: the first page written at level L (0: leaves), held back from the level
        above until a second one comes; if none does, it is the root. Pushing it up at once
        could close pages of one child above it, which the tree of the rules does not have."""

    def add(self, entry: FileEntry) -> None:
        """Take the next entry; ``InvalidNameError`` if its path is unsafe, out of order or clashes.
        (The path is checked again here: an entry made without validation must not get through.)"""
        validate_path(entry.path)
        self._paths.add(entry.path)
        self._leaf.append(entry.to_json())
        if len(self._leaf) >= self.LEAF_CAP or _ends_page(entry.path, self.LEAF_BITS):
            self._close_leaf()

    def finish(self) -> ManifestRoot:
        """Write the unfinished pages bottom-up, up to the first level that has one page: the root."""
        if not self._first and not self._leaf:
            return ManifestRoot(self._put(LeafPage(files=()).to_bytes()), 0, 0)
        if self._leaf:
            self._close_leaf()
        level, root = 0, self._first[0]
        while root is None:
            level += 1
            if self._open[level - 1]:
                self._close_inner(level)
            root = self._first[level]
        return ManifestRoot(root.sha256, root.files, root.bytes)

    def _close_leaf(self) -> None:
        files, self._leaf = self._leaf, []
        body = canonical_json({"schema": 2, "kind": "leaf", "files": files})
        self._written(0, PageChild.model_construct(
            sha256=self._put(body), first=files[0]["path"], last=files[-1]["path"], files=len(files),
            bytes=sum(f["size"] for f in files)))

    def _close_inner(self, level: int) -> None:
        children, self._open[level - 1] = self._open[level - 1], []
        sha = self._put(InnerPage(level=level, children=tuple(children)).to_bytes())
        self._written(level, PageChild.model_construct(
            sha256=sha, first=children[0].first, last=children[-1].last,
            files=sum(c.files for c in children), bytes=sum(c.bytes for c in children)))

    def _written(self, level: int, page: PageChild) -> None:
        """A page of ``level`` is written: make it a child at the level above (see ``_first``)."""
        if len(self._first) == level:
            self._first.append(page)
            return
        first, self._first[level] = self._first[level], None
        if first is not None:
            self._add_child(level + 1, first)
        self._add_child(level + 1, page)

    def _add_child(self, level: int, child: PageChild) -> None:
        if len(self._open) < level:
            self._open.append([])
        page = self._open[level - 1]
        page.append(child)
        if len(page) >= self.INNER_CAP or _ends_page(child.last, self.LEAF_BITS + self.INNER_BITS * level):
            self._close_inner(level)

    def _put(self, body: bytes) -> str:
        sha = hashlib.sha256(body).hexdigest()
        self._put_page(sha, body)
        return sha


def entries_key(entries: Iterable[FileEntry]) -> str:
    """A sha256 naming exactly what ``build_manifest`` would get (entries in ``path_key`` order,
    and the page rules): equal keys give equal digests, so a writer that remembers a key's
    digest can tell an unchanged version without building its pages (a twentieth of the work)."""
    digest = hashlib.sha256(f"manifest {ManifestBuilder.LEAF_BITS} {ManifestBuilder.INNER_BITS} "
                            f"{ManifestBuilder.LEAF_CAP} {ManifestBuilder.INNER_CAP}\n".encode())
    lines = []
    for entry in entries:
        plain = entry.ref is None and entry.chunks is None
        extra = "" if plain else canonical_json(entry.to_json()).decode()
        lines.append(f"{entry.path}\0{entry.sha256}\0{entry.size}\0{extra}\n")
        if len(lines) >= 4096:
            digest.update("".join(lines).encode())
            lines.clear()
    digest.update("".join(lines).encode())
    return digest.hexdigest()


def build_manifest(entries: Iterable[FileEntry], put_page: PutPage) -> ManifestRoot:
    """Build a manifest from entries in ``path_key`` order (e.g. a sorted directory walk)."""
    builder = ManifestBuilder(put_page)
    for entry in entries:
        builder.add(entry)
    return builder.finish()


# -- reading -------------------------------------------------------------------------------------
def iter_entries(get_page: GetPage, digest: str, prefix: str | None = None) -> Iterator[FileEntry]:
    """The manifest's entries in path order, or only those whose path starts with ``prefix``
    (reading only the pages whose range can hold them). Holds one page per level."""
    paths = SortedPaths()
    for sha, leaf in _leaves(get_page, digest, None, None, prefix):
        for entry in leaf.files:
            side = 0 if prefix is None else prefix_side(entry.path, prefix)
            if side > 0:
                return
            if side == 0:
                try:
                    paths.add(entry.path)
                except InvalidNameError as e:
                    raise _broken(sha, str(e)) from None
                yield entry


def manifest_totals(get_page: GetPage, digest: str) -> tuple[int, int]:
    """(files, bytes) of a manifest, from its root page alone."""
    page = _read(get_page, digest, None, None)
    if isinstance(page, LeafPage):
        return len(page.files), sum(e.size for e in page.files)
    return sum(c.files for c in page.children), sum(c.bytes for c in page.children)


def page_digests(get_page: GetPage, digest: str) -> Iterator[str]:
    """Every page of a manifest, root first, reading the root and inner pages but no leaf
    below it: what a writer checks the store for, and what gc keeps."""
    yield digest
    yield from _below(get_page, _read(get_page, digest, None, None))


def find_entry(get_page: GetPage, digest: str, path: str) -> FileEntry | None:
    """The entry for ``path``, or None; reads one page per level."""
    key = path_key(path)
    sha, declared, level = digest, None, None
    while True:
        page = _read(get_page, sha, declared, level)
        if isinstance(page, LeafPage):
            i = bisect_left(page.files, key, key=lambda e: path_key(e.path))
            return page.files[i] if i < len(page.files) and page.files[i].path == path else None
        i = bisect_right(page.children, key, key=lambda c: path_key(c.first)) - 1
        if i < 0 or path_key(page.children[i].last) < key:
            return None
        declared = page.children[i]
        sha, level = declared.sha256, page.level - 1


def _leaves(get_page: GetPage, sha: str, declared: PageChild | None, level: int | None,
            prefix: str | None) -> Iterator[tuple[str, LeafPage]]:
    """The leaves under a page, in order, skipping the children whose range cannot hold ``prefix``."""
    page = _read(get_page, sha, declared, level)
    if isinstance(page, LeafPage):
        yield sha, page
        return
    for child in page.children:
        if prefix is not None and not range_may_hold(child.first, child.last, prefix):
            if prefix_side(child.first, prefix) > 0:
                return
            continue
        yield from _leaves(get_page, child.sha256, child, page.level - 1, prefix)


def _below(get_page: GetPage, page: LeafPage | InnerPage) -> Iterator[str]:
    """The pages under ``page``, reading only those that are inner pages themselves."""
    if isinstance(page, LeafPage):
        return
    for child in page.children:
        yield child.sha256
        if page.level > 1:
            yield from _below(get_page, _read(get_page, child.sha256, child, page.level - 1))


def _read(get_page: GetPage, sha: str, declared: PageChild | None, level: int | None) -> LeafPage | InnerPage:
    """Parse a page and check it against itself and against what its parent said of it: its
    range and totals (``declared``) and its level (0: a leaf). Both are None for the root."""
    page = parse(_Page, get_page(sha), keys.blob(sha)).root
    problem = _problem(page, declared, level)
    if problem:
        raise _broken(sha, problem)
    return page


def _problem(page: LeafPage | InnerPage, declared: PageChild | None, level: int | None) -> str | None:
    page_level = page.level if isinstance(page, InnerPage) else 0
    if level is not None and page_level != level:
        return f"its parent expects a page of level {level}, it is of level {page_level}"
    if page_level >= MAX_DEPTH:
        return f"the tree is deeper than {MAX_DEPTH} pages"
    if isinstance(page, LeafPage):
        first = last = [path_key(e.path) for e in page.files]
        files, size = len(page.files), sum(e.size for e in page.files)
    else:
        first = [path_key(c.first) for c in page.children]
        last = [path_key(c.last) for c in page.children]
        files, size = sum(c.files for c in page.children), sum(c.bytes for c in page.children)
    if any(a > b for a, b in zip(first, last)) or any(a >= b for a, b in zip(last, first[1:])):
        return "its entries are out of order or overlap"
    if declared is None:
        return None
    if not first or (first[0], last[-1]) != (path_key(declared.first), path_key(declared.last)):
        return f"it does not span {declared.first!r} to {declared.last!r} as its parent says"
    if (files, size) != (declared.files, declared.bytes):
        return f"it holds {files} files of {size} bytes, its parent says {declared.files} of {declared.bytes}"
    return None


def _broken(sha: str, problem: str) -> IntegrityError:
    return IntegrityError(f"malformed manifest page {keys.blob(sha)}: {problem}; repair or delete it")
