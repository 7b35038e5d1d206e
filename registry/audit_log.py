"""The audit trail: an append-only log of actions per artifact and per registry collection.

Every alias move (except ``latest``, which the version records already date), link, unlink,
delete and retention action -- and every edit of tags, TTL, description or metadata --
appends one entry. An entry is its own object, written with write-if-absent under a new
time-ordered id (microseconds, then random hex), so concurrent writers never overwrite each
other and one listing returns the log in order. Nothing rewrites or deletes an entry.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from backends import Backend

from . import keys
from .errors import StorageError
from .identity import current_actor
from .records import AuditEntry, now, parse
from .store import Store

ENTRY_ATTEMPTS = 5


def new_entry_id(at: datetime) -> str:
    """``20261202T091500123456Z-<12 hex>``: sorts by time; the random part keeps ids unique."""
    return f"{at:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(6)}"


def append(backend: Backend, project: str, name: str, entry: AuditEntry) -> str:
    """Write ``entry`` into the log of ``project/name`` under a new key; returns the key."""
    body = entry.to_bytes()
    for _ in range(ENTRY_ATTEMPTS):
        key = keys.audit_entry(project, name, new_entry_id(entry.at))
        try:
            backend.write_if_absent(key, body)
            return key
        except FileExistsError:
            if backend.read(key) == body:  # our write landed; only its response was lost
                return key
    raise StorageError(f"could not find a free key for an audit entry of {project}/{name}")


def record(store: Store, logs: Iterable[tuple[str, str]], action: str, subject: str, *,
           alias: str | None = None, before: str | None = None,
           after: str | None = None) -> AuditEntry | None:
    """Append one entry, by this process, to each log in ``logs`` (``(project, name)`` pairs).

    Called after the action succeeded. If an entry cannot be written the action still stands,
    so the error says so rather than suggesting it failed. Offline, nothing is written: an
    outbox's numbers are not the store's, so ``registry sync`` logs the alias moves it publishes,
    with the real numbers, when it publishes them.
    """
    if store.offline:  # (and no STS request for the actor's identity: offline sends nothing)
        return None
    entry = AuditEntry(at=now(), actor=current_actor(store.url), action=action, subject=subject,
                       alias=alias, before=before, after=after)
    for project, name in dict.fromkeys(logs):
        try:
            append(store.backend, project, name, entry)
        except StorageError as e:
            raise StorageError(
                f"{action} on {subject} was done, but its audit entry was not written: {e}"
            ) from e
    return entry


def read_log(backend: Backend, project: str, name: str, limit: int | None = None,
             workers: int = 16) -> list[AuditEntry]:
    """The log of ``project/name`` (its ``limit`` newest entries), oldest first: one listing --
    keys sort by time -- then the entries wanted, read in parallel."""
    listed = [info.key for info in backend.list(keys.audit_prefix(project, name))]
    wanted = listed[-limit:] if limit else listed
    with ThreadPoolExecutor(max_workers=workers) as pool:
        entries = list(pool.map(lambda key: parse(AuditEntry, backend.read(key), key), wanted))
    return sorted(entries, key=lambda e: e.at)
