"""Deleting versions, and their mutable state: tags, TTL, edited description and metadata.

A deleted version keeps its record (so its number is never reused and run records that name
it still read) and gains a tombstone, written once with write-if-absent; readers treat it as
gone, and ``gc`` stops counting its blobs once the tombstone is older than the grace period.
Deleting is refused while a user alias points at the version (unless the aliases go too) and
while the registry links it. ``latest`` moves back to the newest version left.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from backends import Backend

from . import audit_log, keys
from .errors import ConflictError, InvalidNameError, NotFoundError, StorageError
from .mutable import read_doc, update_doc
from .records import Annotations, LinkIndexEntry, Tombstone, VersionRecord, now, parse
from .store import Store
from .versions import (
    aliases_of,
    is_deleted,
    read_version,
    remove_alias,
    retreat_latest,
    version_numbers,
    versions_with_digest,
)

TAG = re.compile(r"[-\w]+( +[-\w]+)*")
"""W&B's tag syntax: words of letters, digits, ``_`` and ``-``, separated by spaces."""
_VERSION_FILE = re.compile(r"v(\d+)\.json")
DeleteReason = Literal["delete", "unlink", "retention", "ttl"]


def validate_tags(tags: Iterable[str] | str) -> list[str]:
    """Tags as W&B takes them (one string or many), duplicates dropped, order kept.

    >>> validate_tags(["prod ready", "v2", "v2"])
    ['prod ready', 'v2']
    """
    listed = [tags] if isinstance(tags, str) else list(tags)
    for tag in listed:
        if not isinstance(tag, str) or not TAG.fullmatch(tag) or len(tag) > 128:
            raise InvalidNameError(
                f"invalid tag {tag!r}: use letters, digits, '-' and '_', words separated by spaces"
            )
    return list(dict.fromkeys(listed))


def require_online(store: Store, action: str) -> None:
    """Deleting, linking and editing tags, TTL, descriptions or policies act on the store's own
    numbers, which an offline outbox does not know: ``registry sync`` publishes versions,
    aliases and runs only, so these are refused offline rather than lost at sync."""
    if store.offline:
        raise StorageError(f"{action} works on the store itself, not offline: go online "
                           "(without --offline or REGISTRY_MODE=offline) and run it again")


# -- which versions are gone -------------------------------------------------------------------
def deleted_numbers(backend: Backend, project: str, name: str, older_than: float | None = None,
                    now_ts: float | None = None) -> set[int]:
    """Versions with a tombstone (one listing); with ``older_than`` seconds, only tombstones at
    least that old by the store's clock, compared with ``now_ts``."""
    found = set()
    for info in backend.list(keys.tombstones_prefix(project, name)):
        match = _VERSION_FILE.fullmatch(info.key.rsplit("/", 1)[-1])
        if match and (older_than is None or now_ts is None or now_ts - info.modified >= older_than):
            found.add(int(match.group(1)))
    return found


def live_version_numbers(backend: Backend, project: str, name: str) -> list[int]:
    """The versions that are not deleted, oldest first (two listings)."""
    gone = deleted_numbers(backend, project, name)
    return [n for n in version_numbers(backend, project, name) if n not in gone]


def live_links(backend: Backend, record: VersionRecord) -> list[VersionRecord]:
    """The registry versions that link ``record`` and are not deleted, from its link index."""
    links = []
    for info in backend.list(keys.links_prefix(record.project, record.name, record.version)):
        try:
            entry = parse(LinkIndexEntry, backend.read(info.key), info.key)
        except FileNotFoundError:
            continue
        for number in versions_with_digest(backend, entry.project, entry.collection, record.digest):
            link = read_version(backend, entry.project, entry.collection, number)
            if link.source == record.ref() and not is_deleted(backend, link.project, link.name, number):
                links.append(link)
    return links


# -- delete ------------------------------------------------------------------------------------
@dataclass
class Deletion:
    record: VersionRecord
    removed_aliases: list[str] = field(default_factory=list)


def delete_version(store: Store, record: VersionRecord, *, delete_aliases: bool = False,
                   reason: DeleteReason = "delete") -> Deletion:
    """Delete one version: refused while a user alias points at it (unless ``delete_aliases``)
    or while the registry links it; its blobs go at the first ``gc`` after the grace period."""
    require_online(store, "deleting a version")
    aliases = _deletable(store.backend, record, delete_aliases)
    store.check_writable()
    _write_tombstone(store.backend, record, reason)
    deletion = Deletion(record)
    for alias in aliases:
        try:
            remove_alias(store.backend, record.project, record.name, alias, expected_version=record.version)
            deletion.removed_aliases.append(alias)
        except (ConflictError, NotFoundError):
            continue  # moved elsewhere (or removed) meanwhile: that move stands
    retreat_latest(store.backend, record, _newest_live_below(store.backend, record))
    _audit_deletion(store, deletion, reason)
    return deletion


def _deletable(backend: Backend, record: VersionRecord, delete_aliases: bool) -> list[str]:
    """The user aliases to remove with the version; raises when it may not be deleted."""
    address = f"{record.project}/{record.name}:v{record.version}"
    if is_deleted(backend, record.project, record.name, record.version):
        raise NotFoundError(f"{address} is already deleted")
    links = live_links(backend, record)
    if links:
        shown = ", ".join(f"{r.project}/{r.name}:v{r.version}" for r in links)
        raise ConflictError(f"{address} is linked from {shown}: unlink those first (artifact.unlink())")
    aliases = [a for a in aliases_of(backend, record.project, record.name).get(record.version, [])
               if a != "latest"]
    if aliases and not delete_aliases:
        raise ConflictError(
            f"{address} has aliases {', '.join(aliases)}: move them, or delete with delete_aliases=True "
            "(registry delete --delete-aliases)"
        )
    return aliases


def _write_tombstone(backend: Backend, record: VersionRecord, reason: DeleteReason) -> None:
    """Write-if-absent: of two deleters, one wins; a lost response is recognised by its bytes."""
    key = keys.tombstone(record.project, record.name, record.version)
    body = Tombstone(version=record.version, deleted_at=now(), reason=reason).to_bytes()
    try:
        backend.write_if_absent(key, body)
    except FileExistsError:
        if backend.read(key) != body:
            raise NotFoundError(
                f"{record.project}/{record.name}:v{record.version} was deleted meanwhile by another writer"
            ) from None


def _newest_live_below(backend: Backend, record: VersionRecord) -> VersionRecord | None:
    gone = deleted_numbers(backend, record.project, record.name)
    numbers = version_numbers(backend, record.project, record.name)
    below = [n for n in numbers if n < record.version and n not in gone]
    return read_version(backend, record.project, record.name, below[-1]) if below else None


def _audit_deletion(store: Store, deletion: Deletion, reason: DeleteReason) -> None:
    record = deletion.record
    address = f"{record.project}/{record.name}:v{record.version}"
    logs = [(record.project, record.name)]
    if record.source is not None:  # an unlink is in the source's log too
        logs.append((record.source.project, record.source.name))
    for alias in deletion.removed_aliases:
        audit_log.record(store, logs, "alias.remove", address, alias=alias, before=f"v{record.version}")
    action = {"delete": "delete", "unlink": "unlink", "retention": "retention.delete",
              "ttl": "ttl.delete"}[reason]
    before = record.source.qualified_name if record.source is not None and reason == "unlink" else address
    audit_log.record(store, logs, action, address, before=before, after=None)


# -- tags, TTL, description and metadata ---------------------------------------------------------
def read_annotations(backend: Backend, record: VersionRecord) -> Annotations:
    """The version's mutable state; its record's description and metadata until first edited."""
    key = keys.version_annotations(record.project, record.name, record.version)
    found = read_doc(backend, key, Annotations)
    return found[0] if found is not None else _as_logged(record)


def _as_logged(record: VersionRecord) -> Annotations:
    return Annotations(description=record.description, metadata=dict(record.metadata),
                       updated_at=record.created_at)


_SHOWN = {"tags": lambda v: ", ".join(v) or None, "ttl_seconds": lambda v: None if v is None else f"{v}s",
          "description": lambda v: v, "metadata": lambda v: None if v is None else str(v)}
_ACTIONS = {"tags": "tags.set", "ttl_seconds": "ttl.set", "description": "description.set",
            "metadata": "metadata.set"}


def update_annotations(store: Store, record: VersionRecord, **changes: object) -> Annotations:
    """Change some of ``tags``, ``ttl_seconds``, ``description``, ``metadata`` by compare-and-swap,
    and append one audit entry per field that changed."""
    unknown = set(changes) - set(_ACTIONS)
    if unknown:
        raise TypeError(f"unknown annotation fields: {sorted(unknown)}")
    if "tags" in changes:
        changes["tags"] = validate_tags(changes["tags"])  # type: ignore[arg-type]
    require_online(store, "editing tags, TTL, description or metadata")
    store.check_writable()
    key = keys.version_annotations(record.project, record.name, record.version)

    def change(current: Annotations | None) -> Annotations:
        base = current or _as_logged(record)
        if all(getattr(base, k) == v for k, v in changes.items()):
            return base
        return base.model_copy(update={**changes, "updated_at": now()})

    before, after = update_doc(store.backend, key, Annotations, change)
    old = before or _as_logged(record)
    address = f"{record.project}/{record.name}:v{record.version}"
    for field_name, action in _ACTIONS.items():
        was, now_is = getattr(old, field_name), getattr(after, field_name)
        if field_name in changes and was != now_is:
            show = _SHOWN[field_name]
            audit_log.record(store, [(record.project, record.name)], action, address,
                             before=show(was), after=show(now_is))
    return after


def annotated_numbers(backend: Backend, project: str, name: str) -> list[int]:
    """Versions that have annotations (one listing): only those can carry tags or a TTL."""
    numbers = []
    for info in backend.list(keys.annotations_prefix(project, name)):
        match = _VERSION_FILE.fullmatch(info.key.rsplit("/", 1)[-1])
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def tagged_numbers(backend: Backend, project: str, name: str, tag: str) -> list[int]:
    """Versions carrying ``tag`` and not deleted: one listing of annotations, then one read each."""
    gone = deleted_numbers(backend, project, name)
    found = []
    for number in annotated_numbers(backend, project, name):
        doc = read_doc(backend, keys.version_annotations(project, name, number), Annotations)
        if doc is not None and tag in doc[0].tags and number not in gone:
            found.append(number)
    return found
