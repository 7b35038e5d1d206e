"""``Config`` and ``Summary``: a run's settings and final values, with attribute and item access."""
from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from .jsonable import to_jsonable


class Config(MutableMapping):
    """Run configuration with attribute and item access: ``config.epochs == config["epochs"]``."""

    def __init__(self, data: dict | None = None, on_change=None) -> None:
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_on_change", on_change)
        self.update(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = to_jsonable(value, f"config[{key!r}]", finite=False)
        if self._on_change:
            self._on_change()

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def update(self, other=(), /, **kwargs) -> None:
        for key, value in dict(other, **kwargs).items():
            self._data[key] = to_jsonable(value, f"config[{key!r}]", finite=False)
        if self._on_change:
            self._on_change()

    def __repr__(self) -> str:
        return f"Config({self._data!r})"


class Summary(Config):
    """Final values of a run; tensors and numpy scalars become plain numbers."""
