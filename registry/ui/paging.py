"""One page of a long list (artifacts, runs, version numbers, files): the page number is clamped,
never an error."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    number: int
    pages: int
    total: int
    param: str
    """The query argument that selects the page (``apage``, ``rpage``...)."""
    size: int

    @property
    def first_index(self) -> int:
        return (self.number - 1) * self.size


def paginate(items: list[T], number: int, size: int, param: str, total: int | None = None) -> Page[T]:
    """Page ``number`` of ``items``; ``total`` when ``items`` holds only the first pages of a longer
    list (loaded up to the page asked for)."""
    count = len(items) if total is None else total
    pages = max(1, math.ceil(count / size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(items[start:start + size], number, pages, count, param, size)
