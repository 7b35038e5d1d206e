"""One directory of a version's file list, for the Files tab: sub-directories with totals, then files."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import FileEntry


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
    """(name, path) of each directory from the root down to this one."""
    dirs: list[TreeDir]
    files: list[FileEntry]


def file_tree(entries: Sequence[FileEntry], directory: str) -> Tree | None:
    """The directory ``directory`` (``""``: the root) of a file list, or None when no file lies under it.

    ``directory`` only filters the (validated) paths of the file list; it never reaches a
    filesystem or a bucket.
    """
    prefix = directory + "/" if directory else ""
    dirs: dict[str, TreeDir] = {}
    files: list[FileEntry] = []
    for entry in entries:
        if not entry.path.startswith(prefix):
            continue
        head, sep, _ = entry.path[len(prefix):].partition("/")
        if sep:
            d = dirs.get(head) or dirs.setdefault(head, TreeDir(head, prefix + head, 0, 0))
            d.size += entry.size
            d.files += 1
        else:
            files.append(entry)
    if directory and not dirs and not files:
        return None
    parts = directory.split("/") if directory else []
    crumbs = [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]
    subdirs = sorted(dirs.values(), key=lambda d: d.name)
    return Tree(directory, crumbs, subdirs, sorted(files, key=lambda f: f.path))
