"""Turning user values (metadata, config, summary, history) into plain JSON."""
from __future__ import annotations

import math
from typing import Any

from .errors import InvalidNameError


def to_jsonable(value: Any, where: str, *, finite: bool = True) -> Any:
    """Plain JSON for ``value``; tensors and numpy values become numbers or lists.

    ``where`` names the value in errors (``metadata['sizes'][2]``). With ``finite=False``
    NaN and infinities are kept as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        if finite:
            raise InvalidNameError(
                f"{where} is {value}, which JSON cannot hold: use a finite number or a string"
            )
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidNameError(f"{where} has a non-string key {key!r}: JSON keys must be strings")
            out[key] = to_jsonable(item, f"{where}[{key!r}]", finite=finite)
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item, f"{where}[{i}]", finite=finite) for i, item in enumerate(value)]
    if hasattr(value, "tolist") and callable(value.tolist):  # torch tensors, numpy arrays and scalars
        return to_jsonable(value.tolist(), where, finite=finite)
    raise InvalidNameError(
        f"{where} is a {type(value).__name__}, which is not JSON-serialisable: "
        "use numbers, strings, lists or dicts"
    )
