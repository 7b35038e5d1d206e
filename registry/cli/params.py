"""Click parameter types built on the library's parsers, so a bad value is a usage error (exit 2).

``SIZE`` and ``DURATION`` accept what REGISTRY_CACHE_MAX and ``gc --grace`` document
(``500MB``, ``24h``); ``VersionType`` accepts ``v3`` or ``3``; ``parse_metadata`` reads
``--metadata`` as inline JSON or ``@file.json``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidNameError
from ..sizes import parse_size

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_VERSION = re.compile(r"v?(\d+)")


def parse_duration(text: str) -> float:
    """``"24h"`` -> 86400.0; ``"90"`` (seconds), ``"30m"``, ``"7d"``, ``"1h30m"`` and ``"0s"`` work too.

    >>> parse_duration("1h30m"), parse_duration("0s"), parse_duration("2d")
    (5400.0, 0.0, 172800.0)
    """
    raw = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(raw):
        match = _DURATION_PART.match(raw, pos)
        if not match or (not match.group(2) and match.end() != len(raw)):
            raise InvalidNameError(f"invalid duration {text!r}: use e.g. 24h, 30m, 7d, 1h30m or 0s")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not raw:
        raise InvalidNameError(f"invalid duration {text!r}: use e.g. 24h, 30m, 7d, 1h30m or 0s")
    return total


class ParsedType(click.ParamType):
    """A click type built on one of our parsers: its ``InvalidNameError`` becomes a usage error."""

    def __init__(self, name: str, parse: Callable[[str], Any], number: Callable[[Any], Any]) -> None:
        self.name, self._parse, self._number = name, parse, number

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)):  # a default given as a number
            return self._number(value)
        try:
            return self._parse(value)
        except InvalidNameError as e:
            self.fail(str(e), param, ctx)


SIZE = ParsedType("SIZE", parse_size, int)
DURATION = ParsedType("DURATION", parse_duration, float)


class VersionType(click.ParamType):
    """``v3`` or ``3`` -> 3."""

    name = "vN"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _VERSION.fullmatch(str(value).strip())
        if not match:
            self.fail(f"invalid version {value!r}: use vN, e.g. v3", param, ctx)
        return int(match.group(1))


def parse_metadata(text: str | None) -> dict[str, Any]:
    """``--metadata``: a JSON object given inline or as ``@file.json``; anything else is a usage error."""
    if text is None:
        return {}
    source = "--metadata"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise click.BadParameter(f"cannot read {path}: {e.strerror or e}",
                                     param_hint="--metadata") from None
        source = str(path)
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"{source} is not valid JSON ({e})", param_hint="--metadata") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{source} must be a JSON object, not {type(value).__name__}",
                                 param_hint="--metadata")
    return value
