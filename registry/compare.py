"""Compare two artifact versions: files added, removed, changed or renamed, and metadata changes.

Used by ``registry diff``; works on any two logged :class:`~registry.Artifact` objects (of the
same artifact or not). Nested metadata is compared key by key, with dotted paths
(``{"a": {"b": 1}}`` -> ``a.b``); lists and other values are compared whole.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .records import FileEntry

if TYPE_CHECKING:
    from .artifact import Artifact

_MISSING = object()


def diff_files(old: Iterable[FileEntry], new: Iterable[FileEntry]) -> dict[str, Any]:
    """Files of ``new`` relative to ``old``.

    A path only in ``old`` whose exact contents appear at exactly one path only in ``new``
    (and nowhere else) is reported as renamed rather than removed + added.

    >>> a = [FileEntry(path="x.txt", sha256="1" * 64, size=1),
    ...      FileEntry(path="y.txt", sha256="2" * 64, size=2)]
    >>> b = [FileEntry(path="x.txt", sha256="3" * 64, size=3),
    ...      FileEntry(path="z.txt", sha256="2" * 64, size=2)]
    >>> d = diff_files(a, b)
    >>> [c["path"] for c in d["changed"]], d["renamed"][0]["old_path"], d["added"], d["removed"]
    (['x.txt'], 'y.txt', [], [])
    """
    before = {e.path: e for e in old}
    after = {e.path: e for e in new}
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p].sha256 != after[p].sha256)
    unchanged = len(set(before) & set(after)) - len(changed)

    renamed: list[dict[str, Any]] = []
    added_by_sha: dict[str, list[str]] = {}
    for path in added:
        added_by_sha.setdefault(after[path].sha256, []).append(path)
    removed_by_sha: dict[str, list[str]] = {}
    for path in removed:
        removed_by_sha.setdefault(before[path].sha256, []).append(path)
    for sha, old_paths in removed_by_sha.items():
        new_paths = added_by_sha.get(sha, [])
        if len(old_paths) == 1 and len(new_paths) == 1:
            renamed.append({"old_path": old_paths[0], "new_path": new_paths[0],
                            "size": before[old_paths[0]].size, "sha256": sha})
    renamed.sort(key=lambda r: r["old_path"])
    gone = {r["old_path"] for r in renamed}
    came = {r["new_path"] for r in renamed}

    def entry(e: FileEntry) -> dict[str, Any]:
        return {"path": e.path, "size": e.size, "sha256": e.sha256}

    return {
        "added": [entry(after[p]) for p in added if p not in came],
        "removed": [entry(before[p]) for p in removed if p not in gone],
        "changed": [
            {"path": p, "old_size": before[p].size, "new_size": after[p].size,
             "old_sha256": before[p].sha256, "new_sha256": after[p].sha256}
            for p in changed
        ],
        "renamed": renamed,
        "unchanged": unchanged,
    }


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            flat.update(_flatten(item, path + "."))
        else:
            flat[path] = item
    return flat


def diff_metadata(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Keys added, removed and changed, as dotted paths into nested dicts.

    >>> diff_metadata({"lr": 0.1, "opt": {"name": "sgd"}}, {"lr": 0.01, "opt": {"name": "sgd", "m": 0.9}})
    {'added': {'opt.m': 0.9}, 'removed': {}, 'changed': {'lr': {'old': 0.1, 'new': 0.01}}}
    """
    before, after = _flatten(old), _flatten(new)
    return {
        "added": {k: after[k] for k in sorted(set(after) - set(before))},
        "removed": {k: before[k] for k in sorted(set(before) - set(after))},
        "changed": {
            k: {"old": before[k], "new": after[k]}
            for k in sorted(set(before) & set(after)) if before[k] != after[k]
        },
    }


def _field(old: Any, new: Any) -> dict[str, Any] | None:
    return None if old == new else {"old": old, "new": new}


def diff_artifacts(old: Artifact, new: Artifact) -> dict[str, Any]:
    """Everything that differs from logged version ``old`` to logged version ``new``."""
    same_contents = old.digest == new.digest
    files = diff_files(old.file_list().files, new.file_list().files) if not same_contents else {
        "added": [], "removed": [], "changed": [], "renamed": [], "unchanged": old.file_count,
    }
    metadata = diff_metadata(old.metadata, new.metadata)
    result = {
        "old": old.qualified_name,
        "new": new.qualified_name,
        "same_contents": same_contents,
        "files": files,
        "metadata": metadata,
        "type": _field(old.type, new.type),
        "description": _field(old.description, new.description),
        "size": _field(old.size, new.size),
    }
    result["identical"] = (same_contents and not any(metadata.values())
                           and result["type"] is None and result["description"] is None)
    return result
