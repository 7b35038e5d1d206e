"""What a copy carries besides versions: tombstones, per-version entries (used-by, link index),
mutable documents (annotations, collection info, retention policies) and the audit log.

Each kind keeps the rule that writes it in any store:
- a tombstone is written once (write-if-absent) and never undone, so deletions travel one
  way: a version deleted at the source is deleted at the destination, and one the
  destination deleted itself stays deleted there (its own tombstone stands: first one wins);
- used-by and link-index entries, and audit entries (unique, time-ordered ids), are only ever
  added: the destination gets those it lacks, and keeps its own;
- a mutable document is written when absent and replaced by compare-and-swap when the
  source's bytes differ: the source wins, as it does for aliases.
Only what belongs to the copied versions (``0..upto``) travels.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from backends import ObjectInfo

from . import keys
from .errors import ConflictError, NotFoundError
from .lifecycle import deleted_numbers
from .mutable import replace_doc
from .records import AuditEntry, VersionRecord, parse
from .store import Store
from .versions import aliases_of, read_version, remove_alias, retreat_latest, version_numbers

_SUBJECT_VERSION = re.compile(r":v(\d+)$")
_VERSION_FILE = re.compile(r"v(\d+)\.json")


def _wanted(number: int, upto: int | None) -> bool:
    return upto is None or number <= upto


def copy_tombstone(source: Store, dest: Store, project: str, name: str, number: int) -> bool:
    """Write the source's tombstone of ``v<number>`` unless the destination has one (which stands)."""
    key = keys.tombstone(project, name, number)
    if dest.backend.exists(key):
        return False
    try:
        dest.backend.write_if_absent(key, source.backend.read(key))
    except FileExistsError:
        return False  # deleted there meanwhile: that deletion stands
    return True


def copy_version_entries(source: Store, dest: Store, prefix: str, upto: int | None) -> int:
    """Entries under ``<prefix>v<N>/`` (used-by, linked-to) of the copied versions that the
    destination lacks: one listing per side. Returns how many were written."""
    there = {info.key for info in dest.backend.list(prefix)}
    written = 0
    for info in source.backend.list(prefix):
        number = int(info.key[len(prefix):].split("/", 1)[0].removeprefix("v"))
        if info.key not in there and _wanted(number, upto):
            dest.backend.write(info.key, source.backend.read(info.key))
            written += 1
    return written


def copy_documents(source: Store, dest: Store, project: str, name: str, upto: int | None) -> list[str]:
    """Annotations of the copied versions, the collection info and the artifact's retention
    policy: absent ones written, differing ones replaced (the source wins). Returns the keys written."""
    wanted = [keys.collection_info(project, name), keys.artifact_retention(project, name)]
    prefix = keys.annotations_prefix(project, name)
    for info in source.backend.list(prefix):
        match = _VERSION_FILE.fullmatch(info.key[len(prefix):])
        if match and _wanted(int(match.group(1)), upto):
            wanted.append(info.key)
    return [key for key in wanted if copy_document(source, dest, key)]


def copy_document(source: Store, dest: Store, key: str) -> bool:
    try:
        body = source.backend.read(key)
    except FileNotFoundError:
        return False
    return replace_doc(dest.backend, key, body)


def copy_audit_log(source: Store, dest: Store, project: str, name: str, upto: int | None) -> int:
    """Audit entries the destination lacks (about the copied versions, or the whole artifact),
    each written once under its own id. Returns how many were written."""
    there = {info.key for info in dest.backend.list(keys.audit_prefix(project, name))}
    written = 0
    for info in _missing(source.backend.list(keys.audit_prefix(project, name)), there):
        body = source.backend.read(info.key)
        if upto is not None:
            about = _SUBJECT_VERSION.search(parse(AuditEntry, body, info.key).subject)
            if about is not None and int(about.group(1)) > upto:
                continue
        try:
            dest.backend.write_if_absent(info.key, body)
            written += 1
        except FileExistsError:
            continue  # the same entry, copied by a concurrent copy
    return written


def _missing(listing: Iterator[ObjectInfo], there: set[str]) -> Iterator[ObjectInfo]:
    return (info for info in listing if info.key not in there)


def settle_deleted_aliases(dest: Store, project: str, name: str, gone: set[int]) -> list[str]:
    """Aliases at the destination that point at a deleted version: user aliases are removed (only
    while they still point there), ``latest`` moves back to the newest version left."""
    removed: list[str] = []
    if not gone:
        return removed
    for number, names in aliases_of(dest.backend, project, name).items():
        if number not in gone:
            continue
        record = read_version(dest.backend, project, name, number)
        for alias in names:
            if alias == "latest":
                retreat_latest(dest.backend, record, newest_live_below(dest, project, name, number, gone))
                continue
            try:
                remove_alias(dest.backend, project, name, alias, expected_version=number)
                removed.append(f"{project}/{name}:{alias}")
            except (ConflictError, NotFoundError):
                continue  # moved (or removed) meanwhile: that stands
    return removed


def newest_live_below(store: Store, project: str, name: str, number: int,
                      gone: set[int]) -> VersionRecord | None:
    below = [n for n in version_numbers(store.backend, project, name) if n < number and n not in gone]
    return read_version(store.backend, project, name, below[-1]) if below else None


def deleted_at(store: Store, project: str, name: str) -> set[int]:
    return deleted_numbers(store.backend, project, name)
