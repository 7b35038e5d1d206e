"""Byte counts as people write them (``20GB``, ``512MiB``) and as the CLI prints them.

A module of its own, free of pydantic, so that the CLI's option types load without the models.
"""
from __future__ import annotations

import re

from .errors import InvalidNameError

__all__ = ["format_size", "parse_size"]

_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3, "GB": 1000**3,
          "T": 1000**4, "TB": 1000**4, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4}


def parse_size(text: str) -> int:
    """``"20GB"`` -> 20_000_000_000; ``"512MiB"``, ``"1.5G"`` and plain byte counts work too."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if not match or unit not in _UNITS:
        raise InvalidNameError(
            f"invalid size {text!r}: use a number with an optional unit, e.g. 500MB or 20GiB"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n: int | None) -> str:
    """Decimal units, as ``parse_size`` reads them: ``1500000`` -> ``1.5 MB``; ``None`` -> ``-``."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
