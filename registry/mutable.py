"""The few mutable documents of the store (annotations, collection info, retention policies),
each changed only by compare-and-swap: read it with its token, compute the new body, write it
``If-Match`` (or ``If-None-Match: *`` when absent), and start again if another writer got there
first. Version records never change; these keys hold what may.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from backends import Backend

from .errors import ConflictError
from .records import parse
from .versions import CAS_ATTEMPTS, pause_before_retry, swap_in

Doc = TypeVar("Doc", bound=BaseModel)


def read_doc(backend: Backend, key: str, model: type[Doc]) -> tuple[Doc, str] | None:
    """The document at ``key`` and its token, or None when there is none."""
    try:
        data, token = backend.read_with_token(key)
    except FileNotFoundError:
        return None
    return parse(model, data, key), token


def update_doc(backend: Backend, key: str, model: type[Doc], change: Callable[[Doc | None], Doc]
               ) -> tuple[Doc | None, Doc]:
    """Apply ``change`` (current document or None -> new one) by compare-and-swap; returns
    (before, after). ``change`` may run more than once: it must only compute."""
    for attempt in range(CAS_ATTEMPTS):
        found = read_doc(backend, key, model)
        before = found[0] if found else None
        after = change(before)
        if before is not None and after == before:
            return before, after
        body = after.to_bytes()  # type: ignore[attr-defined]
        if swap_in(backend, key, body, found[1] if found else None):
            return before, after
        pause_before_retry(attempt)
    raise ConflictError(f"{key} kept changing under {CAS_ATTEMPTS} attempts: retry later")


def replace_doc(backend: Backend, key: str, body: bytes) -> bool:
    """Make ``key`` hold exactly ``body`` (a copy: the source's document wins) by compare-and-swap,
    so a concurrent local edit is never half-overwritten; returns whether anything was written."""
    for attempt in range(CAS_ATTEMPTS):
        try:
            current, token = backend.read_with_token(key)
        except FileNotFoundError:
            current, token = None, None
        if current == body:
            return False
        if swap_in(backend, key, body, token):
            return True
        pause_before_retry(attempt)
    raise ConflictError(f"{key} kept changing under {CAS_ATTEMPTS} attempts: retry later")
