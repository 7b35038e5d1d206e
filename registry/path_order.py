"""The order format 2 keeps file paths in, and the rules a sorted stream of paths must obey.

Paths compare component by component (``path_key``), so a sorted directory walk yields them
in order and every string prefix (``"data/tr"``, ``"data/train/"``) covers one contiguous run:
a manifest page whose first and last paths lie outside that run on the same side holds none
of it (``prefix_side``, ``range_may_hold``).
"""
from __future__ import annotations

import unicodedata

from .errors import InvalidNameError


def path_key(path: str) -> str:
    """The sort key of a path: ``"a/b"`` sorts before ``"a-b"``, as if compared component by
    component (``("a", "b") < ("a-b",)``). The separator becomes NUL, which sorts below every
    character and never occurs in a valid path: one string per path, where a tuple of its parts
    would cost three times the memory in a million-file sort."""
    return path.replace("/", "\0")


def prefix_side(path: str, prefix: str) -> int:
    """0 if ``path`` starts with ``prefix``, else -1 or 1: whether it sorts before or after
    every path that does.

    >>> [prefix_side(p, "data/tr") for p in ("data", "data/test", "data/train/1", "data/valid")]
    [-1, -1, 0, 1]
    """
    *directories, partial = prefix.split("/")
    parts = path.split("/")
    head = parts[:len(directories)]
    if head != directories:
        return -1 if head < directories else 1
    if len(parts) == len(directories):
        return -1  # the directory itself sorts before everything inside it
    name = parts[len(directories)]
    if name.startswith(partial):
        return 0
    return -1 if name < partial else 1


def range_may_hold(first: str, last: str, prefix: str) -> bool:
    """Whether a run of paths from ``first`` to ``last`` (in ``path_key`` order) can hold one
    starting with ``prefix``: the matching paths are one contiguous run, so only a range lying
    wholly before it or wholly after it cannot."""
    return prefix_side(first, prefix) <= 0 <= prefix_side(last, prefix)


class SortedPaths:
    """Checks a stream of paths against the rules ``names.validate_path_set`` applies to a
    whole list, plus ``path_key`` order, without holding the list. Each path itself is checked
    where it enters (``FileEntry``, which reading a page runs), not again here.

    Order makes most rules local: a duplicate or a path out of order shows against the previous
    path, and a file that is also a directory (``a`` then ``a/b``) comes right before the first
    path inside it. Names equal up to case or Unicode form need not be neighbours (``A/…``,
    ``B``, ``a``), so for each directory open on the current path it keeps its entries' folded
    names: the memory of the listings a sorted walk holds anyway, not of the whole list.
    """

    def __init__(self) -> None:
        self._previous: list[str] = []
        self._folded: list[dict[str, str]] = [{}]
        """Per depth: folded name -> name, for the entries of the directory open at that depth."""

    def add(self, path: str) -> None:
        """Accept the next path, or raise ``InvalidNameError`` saying what is wrong with it."""
        parts, previous, folded = path.split("/"), self._previous, self._folded
        if parts <= previous:
            word = "twice" if parts == previous else f"after {'/'.join(previous)!r}"
            raise InvalidNameError(f"file path {path!r} comes {word}: give paths once each, in order")
        depth = 0  # the directories it shares with the previous path
        for mine, theirs in zip(parts, previous):
            if mine != theirs:
                break
            depth += 1
        if depth == len(previous) > 0:
            raise InvalidNameError(
                f"{'/'.join(previous)!r} is a file but {path!r} needs it to be a directory: rename one")
        del folded[depth + 1:]
        name = parts[depth]
        seen = folded[depth].setdefault(_fold(name), name)
        if seen != name:
            where = "/".join([*parts[:depth], ""])
            raise InvalidNameError(f"paths {where + seen!r} and {where + name!r} collide "
                                   "(same name up to case or Unicode form): rename one")
        if depth + 1 < len(parts):
            folded.extend({_fold(part): part} for part in parts[depth + 1:])
        self._previous = parts


def _fold(name: str) -> str:
    return name.lower() if name.isascii() else unicodedata.normalize("NFC", name).casefold()
