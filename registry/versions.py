"""Version records and aliases: the commit protocol that many writers on many machines share.

A version record is created only by write-if-absent at the next free number, after all of
its blobs and its file list exist; ``latest`` and other aliases move only by
compare-and-swap. So numbers are dense, nothing is overwritten, a reader never sees a
version with missing files, and ``latest`` never moves backwards.
"""
from __future__ import annotations

import difflib
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from backends import Backend, PreconditionFailed

from . import keys
from .errors import ConflictError, IntegrityError, NotFoundError
from .names import Address, is_version_alias, validate_alias
from .records import AliasRecord, DigestIndexEntry, VersionRecord, now, parse

_VERSION_FILE = re.compile(r"v(\d+)\.json")
CAS_ATTEMPTS = 30
CAS_FIRST_PAUSE = 0.005
"""Seconds: the compare-and-swap loop pauses a random time up to this, doubling per attempt..."""
CAS_MAX_PAUSE = 1.0
"""...up to this, so movers that collided spread out instead of colliding again."""


def read_version(backend: Backend, project: str, name: str, number: int) -> VersionRecord:
    key = keys.version(project, name, number)
    try:
        data = backend.read(key)
    except FileNotFoundError:
        if not version_numbers(backend, project, name):
            raise missing_artifact(backend, project, name) from None
        raise NotFoundError(
            f"artifact {project}/{name}:v{number} does not exist: "
            f"list versions with `registry ls {project}/{name}`"
        ) from None
    record = parse(VersionRecord, data, key)
    if (record.project, record.name, record.version) != (project, name, number):
        raise IntegrityError(
            f"malformed record {key}: it describes {record.project}/{record.name}:v{record.version}; "
            "repair or delete it"
        )
    return record


def read_alias(backend: Backend, project: str, name: str, alias: str) -> tuple[AliasRecord, str] | None:
    key = keys.alias(project, name, alias)
    try:
        data, token = backend.read_with_token(key)
    except FileNotFoundError:
        return None
    return parse(AliasRecord, data, key), token


def version_numbers(backend: Backend, project: str, name: str) -> list[int]:
    numbers = []
    for info in backend.list(keys.versions_prefix(project, name)):
        match = _VERSION_FILE.fullmatch(info.key.rsplit("/", 1)[-1])
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def aliases_of(backend: Backend, project: str, name: str) -> dict[int, list[str]]:
    """Version number -> its aliases (``latest`` and custom ones), from one listing plus reads."""
    by_version: dict[int, list[str]] = {}
    for info in backend.list(keys.aliases_prefix(project, name)):
        alias = info.key.rsplit("/", 1)[-1].removesuffix(".json")
        found = read_alias(backend, project, name, alias)
        if found:
            by_version.setdefault(found[0].version, []).append(alias)
    return {v: sorted(a, key=lambda x: (x != "latest", x)) for v, a in by_version.items()}


def missing_artifact(backend: Backend, project: str, name: str) -> NotFoundError:
    """The error for an artifact with no versions: a command that works, and close names if any."""
    projects = backend.list_children(keys.projects_prefix())
    if project not in projects:
        return NotFoundError(
            f"artifact {project}/{name} does not exist: "
            f"there is no project {project!r}{did_you_mean(project, projects)}; "
            "list projects with `registry ls`"
        )
    names = backend.list_children(keys.artifacts_prefix(project))
    return NotFoundError(
        f"artifact {project}/{name} does not exist{did_you_mean(name, names)}: "
        f"list artifacts with `registry ls {project}`"
    )


def did_you_mean(wanted: str, candidates: list[str]) -> str:
    """`` (did you mean a or b?)`` for the candidates close to ``wanted``; empty when none is."""
    close = difflib.get_close_matches(wanted, candidates, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def resolve(backend: Backend, address: Address) -> VersionRecord:
    """The version an address names: ``:vN``, ``:alias`` or ``@sha256:<digest>`` (the newest with it).

    A deleted version (one with a tombstone) is not found, whatever names it.
    """
    record = _resolve_record(backend, address)
    if is_deleted(backend, record.project, record.name, record.version):
        raise NotFoundError(
            f"{record.project}/{record.name}:v{record.version} was deleted: "
            f"see `registry history {record.project}/{record.name}`"
        )
    return record


def is_deleted(backend: Backend, project: str, name: str, number: int) -> bool:
    """True once a tombstone exists for the version (deletion is never undone)."""
    return backend.exists(keys.tombstone(project, name, number))


def _resolve_record(backend: Backend, address: Address) -> VersionRecord:
    project, name = address.project, address.name
    if address.digest:
        numbers = [n for n in versions_with_digest(backend, project, name, address.digest)
                   if not is_deleted(backend, project, name, n)]
        if not numbers and not version_numbers(backend, project, name):
            raise missing_artifact(backend, project, name)
        if not numbers:
            raise NotFoundError(f"no version of {project}/{name} has digest sha256:{address.digest}")
        return read_version(backend, project, name, numbers[-1])
    alias = address.alias or "latest"
    if is_version_alias(alias):
        return read_version(backend, project, name, int(alias[1:]))
    found = read_alias(backend, project, name, alias)
    if found is None:
        numbers = version_numbers(backend, project, name)
        if not numbers:
            raise missing_artifact(backend, project, name)
        if alias == "latest":  # a writer died before setting its first alias
            return read_version(backend, project, name, numbers[-1])
        raise NotFoundError(
            f"artifact {project}/{name} has no alias {alias!r}: "
            f"list aliases with `registry ls {project}/{name}`"
        )
    record = found[0]
    try:
        return read_version(backend, project, name, record.version)
    except NotFoundError:
        raise NotFoundError(
            f"alias {keys.alias(project, name, alias)} points to v{record.version}, which does not exist: "
            "set the alias again"
        ) from None


def versions_with_digest(backend: Backend, project: str, name: str, digest: str) -> list[int]:
    """Versions holding ``digest``, from the digest index (one listing), each confirmed by its record."""
    numbers = []
    for info in backend.list(keys.digest_index_prefix(project, name, digest)):
        match = _VERSION_FILE.fullmatch(info.key.rsplit("/", 1)[-1])
        if not match:
            continue
        try:
            record = read_version(backend, project, name, int(match.group(1)))
        except NotFoundError:
            continue  # an index entry whose writer lost its race or died: ignored
        if record.digest == digest:
            numbers.append(record.version)
    return sorted(numbers)


@dataclass
class CommitResult:
    record: VersionRecord
    created: bool
    """False when the contents equal the latest version, which is returned instead."""
    moved: dict[str, int | None] = field(default_factory=dict)
    """The aliases this commit moved, each with the version it pointed to before (None: new)."""


def commit_version(
    backend: Backend,
    draft: VersionRecord,
    aliases: list[str],
    crash: Callable[[str], None] = lambda label: None,
    after: int | None = -1,
    commit_id: str | None = None,
    dedupe: bool = True,
) -> CommitResult:
    """Create the next version for ``draft`` (whose number is ignored), then move its aliases.

    Contents identical to the latest version return that version. A lost response to our own
    write-if-absent is recognised by reading the record back and comparing the commit id.
    With ``after`` (a version number, or None for "no version yet") the new version must come
    right after it: a draft built on that version (incremental) would otherwise drop what a
    concurrent writer committed meanwhile, so ``BaseMovedError`` says to build it again.
    ``commit_id`` (default: a new random one) lets a writer that publishes a version it already
    named elsewhere (``registry sync``) find its record again after a crash.
    ``dedupe=False`` always makes a new version (a registry link to another source with the
    same contents is a version of its own). A deleted version is never returned.
    """
    project, name = draft.project, draft.name
    for alias in aliases:
        validate_alias(alias, settable=True)
    latest = latest_number(backend, project, name)
    if after != -1 and latest != after:
        raise BaseMovedError(f"{project}/{name} moved on to v{latest} while a version was built on v{after}")
    if latest is not None:
        current = read_version(backend, project, name, latest)
        if dedupe and _same_live(backend, current, draft.digest):
            return _finish(backend, current, aliases, created=False, crash=crash)
    number = 0 if latest is None else latest + 1
    commit_id = commit_id or uuid.uuid4().hex
    while True:
        record = draft.model_copy(update={"version": number, "commit_id": commit_id, "created_at": now()})
        _index_digest(backend, project, name, draft.digest, number)
        try:
            backend.write_if_absent(keys.version(project, name, number), record.to_bytes())
            crash("after-version")
            return _finish(backend, record, aliases, created=True, crash=crash)
        except FileExistsError:
            existing = read_version(backend, project, name, number)
            if existing.commit_id == commit_id:  # our write landed; only its response was lost
                return _finish(backend, existing, aliases, created=True, crash=crash)
            if after != -1:
                raise BaseMovedError(
                    f"{project}/{name}:v{number} was committed by another writer first"
                ) from None
            if dedupe and _same_live(backend, existing, draft.digest):
                return _finish(backend, existing, aliases, created=False, crash=crash)
            number += 1


class BaseMovedError(ConflictError):
    """The version a draft was built on is no longer the latest: build it again on the new one."""


def _index_digest(backend: Backend, project: str, name: str, digest: str, number: int) -> None:
    """Written before the version record, so the index never misses a version; readers confirm each entry."""
    try:
        entry = DigestIndexEntry(version=number)
        backend.write_if_absent(keys.digest_index(project, name, digest, number), entry.to_bytes())
    except FileExistsError:
        pass  # a racing writer with the same contents indexed this number already


def _same_live(backend: Backend, record: VersionRecord, digest: str) -> bool:
    """``record`` holds ``digest``, is the highest version, and is not deleted: logging the same
    contents again returns it."""
    project, name, number = record.project, record.name, record.version
    return (record.digest == digest and not _exists(backend, project, name, number + 1)
            and not is_deleted(backend, project, name, number))


def _exists(backend: Backend, project: str, name: str, number: int) -> bool:
    return backend.exists(keys.version(project, name, number))


def latest_number(backend: Backend, project: str, name: str) -> int | None:
    """The highest version: start from ``latest`` (which may lag a dead writer) and probe upwards."""
    found = read_alias(backend, project, name, "latest")
    if found is None:
        numbers = version_numbers(backend, project, name)
        return numbers[-1] if numbers else None
    number = found[0].version
    while _exists(backend, project, name, number + 1):
        number += 1
    return number


def _finish(
    backend: Backend,
    record: VersionRecord,
    aliases: list[str],
    created: bool,
    crash: Callable[[str], None],
) -> CommitResult:
    advance_latest(backend, record)
    crash("before-alias")
    moved: dict[str, int | None] = {}
    for alias in aliases:
        move = move_alias(backend, record, alias)
        if move.changed:
            moved[alias] = move.previous
    return CommitResult(record, created, moved)


def advance_latest(backend: Backend, record: VersionRecord) -> None:
    """Move ``latest`` to ``record`` unless it already points at a higher version."""
    _move_alias(backend, record, "latest", only_forward=True)


def retreat_latest(backend: Backend, deleted: VersionRecord, target: VersionRecord | None) -> None:
    """After ``deleted`` was deleted: move ``latest`` back to ``target`` (None: remove it), only
    if it still points at ``deleted``. Version records stay, so the next writer still numbers
    past the deleted version; a writer that commits meanwhile moves ``latest`` forward again."""
    for attempt in range(CAS_ATTEMPTS):
        found = read_alias(backend, deleted.project, deleted.name, "latest")
        if found is None or found[0].version != deleted.version:
            return
        try:
            if target is None:
                backend.delete_if_match(keys.alias(deleted.project, deleted.name, "latest"), found[1])
            else:
                body = AliasRecord(alias="latest", version=target.version, digest=target.digest,
                                   updated_at=now()).to_bytes()
                backend.write_if_match(keys.alias(deleted.project, deleted.name, "latest"), body, found[1])
            return
        except PreconditionFailed:
            pause_before_retry(attempt)


def set_alias(
    backend: Backend, record: VersionRecord, alias: str, expected_version: int | None = None
) -> bool:
    """Point ``alias`` at ``record``; with ``expected_version``, only if it still points there.

    Returns True once our write is the alias's state. Raises ``ConflictError`` when
    ``expected_version`` is given and another writer moved the alias first.
    """
    return move_alias(backend, record, alias, expected_version).landed


@dataclass(frozen=True)
class AliasMove:
    """What moving an alias did: whether our write is its state, and where it pointed before."""

    landed: bool
    previous: int | None
    new: int

    @property
    def changed(self) -> bool:
        return self.landed and self.previous != self.new


def move_alias(
    backend: Backend, record: VersionRecord, alias: str, expected_version: int | None = None
) -> AliasMove:
    """``set_alias``, also telling where the alias pointed before (for the audit log)."""
    validate_alias(alias, settable=True)
    landed, previous = _move_alias(backend, record, alias, expected_version=expected_version)
    return AliasMove(landed, previous, record.version)


def _move_alias(
    backend: Backend,
    record: VersionRecord,
    alias: str,
    only_forward: bool = False,
    expected_version: int | None = None,
) -> tuple[bool, int | None]:
    """(whether our write is the alias's state, the version it pointed to before)."""
    key = keys.alias(record.project, record.name, alias)
    body = AliasRecord(alias=alias, version=record.version, digest=record.digest, updated_at=now()).to_bytes()
    for attempt in range(CAS_ATTEMPTS):
        found = read_alias(backend, record.project, record.name, alias)
        current = found[0].version if found else None
        if expected_version is not None and current != expected_version:
            now_at = f"now points to v{current}" if current is not None else "does not exist"
            raise ConflictError(
                f"alias {alias!r} of {record.project}/{record.name} {now_at}, not v{expected_version}: "
                "read it again and retry"
            )
        if current is not None and (current == record.version or (only_forward and current > record.version)):
            return current == record.version, current
        if swap_in(backend, key, body, found[1] if found else None):
            return True, current
        if expected_version is not None:
            raise ConflictError(
                f"alias {alias!r} of {record.project}/{record.name} was moved by another writer: "
                "read it again and retry"
            )
        pause_before_retry(attempt)
    raise ConflictError(
        f"alias {alias!r} of {record.project}/{record.name} kept changing under {CAS_ATTEMPTS} attempts: "
        "retry later"
    )


def swap_in(backend: Backend, key: str, body: bytes, token: str | None) -> bool:
    """Write ``body`` at ``key`` only if it is as it was read (absent when ``token`` is None).

    True when our write is there, also when only its answer was lost (a retry then meets our
    own bytes); False when another writer got there first.
    """
    try:
        if token is None:
            backend.write_if_absent(key, body)
        else:
            backend.write_if_match(key, body, token)
        return True
    except (FileExistsError, PreconditionFailed):
        try:
            return backend.read(key) == body
        except FileNotFoundError:
            return False


def pause_before_retry(attempt: int) -> None:
    """Full-jitter exponential backoff before the next compare-and-swap attempt."""
    time.sleep(random.uniform(0, min(CAS_MAX_PAUSE, CAS_FIRST_PAUSE * 2**attempt)))


def remove_alias(backend: Backend, project: str, name: str, alias: str,
                 expected_version: int | None = None) -> int:
    """Delete ``alias`` only if it still points where it was read to: a concurrent move wins.

    Returns the version it pointed to. Raises ``ConflictError`` naming where the alias points
    now when another writer moved it in between (or, with ``expected_version``, when it points
    elsewhere already); removing an alias that another writer removed first succeeds.
    """
    validate_alias(alias, settable=True)
    found = read_alias(backend, project, name, alias)
    if found is None:
        raise NotFoundError(f"artifact {project}/{name} has no alias {alias!r}")
    if expected_version is not None and found[0].version != expected_version:
        raise ConflictError(
            f"alias {alias!r} of {project}/{name} points to v{found[0].version}, "
            f"not v{expected_version}: kept"
        )
    try:
        backend.delete_if_match(keys.alias(project, name, alias), found[1])
    except PreconditionFailed:
        now_at = read_alias(backend, project, name, alias)
        if now_at is None:  # gone: our delete landed (its response was lost), or another remover's did
            return found[0].version
        raise ConflictError(
            f"alias {alias!r} of {project}/{name} was moved to v{now_at[0].version} "
            f"(from v{found[0].version}) while being removed, "
            "and was kept: check where it points and remove it again if still wanted"
        ) from None
    return found[0].version
