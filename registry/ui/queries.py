"""Small read helpers for the UI pages, on top of ``registry.Api`` (nothing here writes)."""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .. import keys
from ..api import Api
from ..records import FileEntry, VersionRecord
from ..versions import aliases_of, read_version, version_numbers

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    number: int
    pages: int
    total: int
    param: str
    size: int

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.size


def paginate(items: list[T], number: int, size: int, param: str) -> Page[T]:
    pages = max(1, math.ceil(len(items) / size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(items[start:start + size], number, pages, len(items), param, size)


def project_exists(api: Api, project: str) -> bool:
    return any(api.store.backend.list_children(prefix) for prefix in (keys.artifacts_prefix(project), keys.runs_prefix(project)))


def project_counts(api: Api, project: str) -> tuple[int, int]:
    """(artifact count, run count) from two directory listings, without reading any record."""
    backend = api.store.backend
    return len(backend.list_children(keys.artifacts_prefix(project))), len(backend.list_children(keys.runs_prefix(project)))


@dataclass
class CollectionRow:
    """One artifact of a project page: its latest version record and every alias."""

    name: str
    type: str
    version_count: int
    latest: VersionRecord
    aliases: dict[int, list[str]]

    @property
    def latest_aliases(self) -> list[str]:
        return self.aliases.get(self.latest.version, [])


def project_collections(api: Api, project: str) -> list[CollectionRow]:
    """Like ``Api.artifacts`` (one version record per artifact: the latest), read in parallel.

    ``Api.artifacts`` reads artifact after artifact: two listings and a few small reads
    each, which adds up on S3 (round trips) and for projects of many artifacts.
    """
    backend = api.store.backend
    names = api.artifact_names(project)

    def one(name: str) -> CollectionRow | None:
        numbers = version_numbers(backend, project, name)
        if not numbers:
            return None
        aliases = aliases_of(backend, project, name)
        latest = next((v for v, a in aliases.items() if "latest" in a), numbers[-1])
        record = read_version(backend, project, name, latest)
        return CollectionRow(name, record.type, len(numbers), record, aliases)

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(api.store.settings.workers, len(names)))) as pool:
        return [row for row in pool.map(one, names) if row is not None]


def collections_by_type(collections: list[CollectionRow]) -> list[tuple[str, list[CollectionRow]]]:
    groups: dict[str, list[CollectionRow]] = {}
    for c in sorted(collections, key=lambda c: (c.type, c.name)):
        groups.setdefault(c.type, []).append(c)
    return list(groups.items())


@dataclass
class TreeDir:
    name: str
    path: str
    size: int
    files: int


@dataclass
class Tree:
    path: str
    crumbs: list[tuple[str, str]]
    dirs: list[TreeDir]
    files: list[FileEntry]


def file_tree(entries: tuple[FileEntry, ...] | list[FileEntry], directory: str) -> Tree | None:
    """One directory of a version's file list: its sub-directories (with totals) and files.

    ``directory`` only filters the (validated) paths of the file list; it never reaches a
    filesystem or a bucket. Returns None when no file lies under it.
    """
    prefix = directory + "/" if directory else ""
    dirs: dict[str, TreeDir] = {}
    files: list[FileEntry] = []
    for entry in entries:
        if not entry.path.startswith(prefix):
            continue
        rest = entry.path[len(prefix):]
        head, sep, _ = rest.partition("/")
        if sep:
            d = dirs.get(head)
            if d is None:
                d = dirs[head] = TreeDir(head, prefix + head, 0, 0)
            d.size += entry.size
            d.files += 1
        else:
            files.append(entry)
    if directory and not dirs and not files:
        return None
    crumbs = []
    parts = directory.split("/") if directory else []
    for i, part in enumerate(parts):
        crumbs.append((part, "/".join(parts[: i + 1])))
    return Tree(directory, crumbs, sorted(dirs.values(), key=lambda d: d.name), sorted(files, key=lambda f: f.path))


def json_cell(value: Any) -> str:
    """A config or summary value as one line of text (strings as they are)."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
