"""Moving and removing user aliases with an audit entry for each change (``latest`` is dated by
the version records themselves and is not logged)."""
from __future__ import annotations

from collections.abc import Mapping

from . import audit_log
from .records import VersionRecord
from .store import Store
from .versions import move_alias, remove_alias


def _logs(record: VersionRecord) -> list[tuple[str, str]]:
    """A registry link's alias moves are in its source's log too."""
    logs = [(record.project, record.name)]
    if record.source is not None:
        logs.append((record.source.project, record.source.name))
    return logs


def set_alias(store: Store, record: VersionRecord, alias: str, expected_version: int | None = None) -> bool:
    """Point ``alias`` at ``record`` (compare-and-swap) and log the move when it changed anything."""
    store.check_writable()
    move = move_alias(store.backend, record, alias, expected_version)
    if move.changed:
        audit_moves(store, record, {alias: move.previous})
    return move.landed


def audit_moves(store: Store, record: VersionRecord, moved: Mapping[str, int | None]) -> None:
    """Log aliases already moved onto ``record`` (by a commit), each with where it was before."""
    address = f"{record.project}/{record.name}:v{record.version}"
    for alias, previous in moved.items():
        audit_log.record(store, _logs(record), "alias.set", address, alias=alias,
                         before=None if previous is None else f"v{previous}", after=f"v{record.version}")


def remove(store: Store, project: str, name: str, alias: str, expected_version: int | None = None) -> int:
    """Remove ``alias`` (only if it is still where it was read, and at ``expected_version`` if
    given) and log it; returns its version."""
    store.check_writable()
    number = remove_alias(store.backend, project, name, alias, expected_version)
    audit_log.record(store, [(project, name)], "alias.remove", f"{project}/{name}:v{number}", alias=alias,
                     before=f"v{number}", after=None)
    return number
