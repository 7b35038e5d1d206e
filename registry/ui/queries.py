"""Small read helpers for the UI pages, on top of ``registry.Api`` (nothing here writes)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .. import keys
from ..api import Api, ArtifactCollection
from ..errors import NotFoundError
from ..records import FileEntry, VersionRecord
from ..versions import read_version

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


def collections_by_type(collections: list[ArtifactCollection]) -> list[tuple[str, list[ArtifactCollection]]]:
    groups: dict[str, list[ArtifactCollection]] = {}
    for c in sorted(collections, key=lambda c: (c.type, c.name)):
        groups.setdefault(c.type, []).append(c)
    return list(groups.items())


def version_records(api: Api, project: str, name: str, numbers: list[int]) -> dict[int, VersionRecord]:
    """The records of a page of versions (a missing one is left out)."""
    out = {}
    for n in numbers:
        try:
            out[n] = read_version(api.store.backend, project, name, n)
        except NotFoundError:
            continue
    return out


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
