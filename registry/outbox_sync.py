"""``registry sync``: publish an offline outbox into the real store through the commit protocol.

Each outbox version is committed like any new version (so it gets the next real number, and
contents identical to the real ``latest`` return that version), carrying the commit id it was
given offline: after a crash, the digest index finds the record that id wrote, so a rerun
never publishes anything twice. Progress is also noted in the outbox (``sync/published/...``)
to skip that look-up. Then used-by entries and runs are written with version numbers
rewritten to the real ones, and aliases move by compare-and-swap from where they pointed when
they first moved offline; an alias moved in the store meanwhile is reported, never forced.
A finished sync moves the outbox aside (``offline.synced_dir``), so a second sync finds
nothing to do.
"""
from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from backends.local import LocalBackend

from . import keys
from .alias_moves import audit_moves
from .blob_transfer import Sent, send_blobs
from .blobs import BlobStore
from .errors import ConflictError, IntegrityError
from .filelists import entries_of_record, manifest_blobs
from .offline import outbox_dir, seen_dir, synced_dir
from .protection import Protection
from .records import (
    AliasBase,
    AliasRecord,
    ArtifactRef,
    RunRecord,
    SyncProgress,
    VersionRecord,
    parse,
)
from .run_transfer import transfer_run
from .seen import remember_record
from .store import Store, open_store
from .versions import (
    advance_latest,
    commit_version,
    is_deleted,
    read_alias,
    read_version,
    set_alias,
    version_numbers,
)

CrashPoint = Callable[[str], None]
_USED_BY = re.compile(r"projects/([^/]+)/artifacts/([^/]+)/used-by/v(\d+)/([^/]+\.json)")
_ALIAS = re.compile(r"projects/([^/]+)/artifacts/([^/]+)/aliases/([^/]+)\.json")
VersionKey = tuple[str, str, int]


@dataclass
class SyncReport:
    """What a sync published (or, with ``dry_run``, would publish)."""

    url: str
    outbox: str
    dry_run: bool = False
    versions: list[dict] = field(default_factory=list)
    """``{"outbox": "p/n:v1", "published": "p/n:v7" or None, "created": bool}`` per outbox version."""
    aliases: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    sent: Sent = field(default_factory=Sent)
    archived_to: str | None = None


def sync(url: str | None = None, *, dry_run: bool = False, crash: CrashPoint | None = None) -> SyncReport:
    """Publish this machine's outbox for the store ``url`` (default ``REGISTRY_URL``).

    >>> report = registry.sync()            # doctest: +SKIP
    >>> report.versions, report.conflicts   # doctest: +SKIP
    """
    store = open_store(url, "online")
    path = outbox_dir(store.settings)
    report = SyncReport(url=store.url, outbox=str(path), dry_run=dry_run)
    if not path.is_dir():
        return report
    from filelock import FileLock  # imported on first use: it costs every CLI call ~15 ms

    with FileLock(str(path.parent / "sync.lock")):
        if path.is_dir():  # a sync that held the lock before us may have finished it
            OutboxSync(store, LocalBackend(path), report, crash or (lambda label: None)).run()
    return report


class OutboxSync:
    """One pass over one outbox: versions, used-by entries, aliases, runs, then archive."""

    def __init__(self, store: Store, outbox: LocalBackend, report: SyncReport, crash: CrashPoint) -> None:
        self.store, self.outbox, self.report, self.crash = store, outbox, report, crash
        self.outbox_blobs = BlobStore(outbox, workers=store.settings.workers)
        self.published: dict[VersionKey, VersionRecord] = {}
        self.offline_records: dict[VersionKey, VersionRecord] = {}
        self.moved: dict[VersionKey, list[str]] = {}

    def run(self) -> None:
        if not self.report.dry_run:
            self.store.check_writable()
        for record in self._outbox_versions():
            self._publish(record)
        if self.report.dry_run:
            self._list_aliases_and_runs()
            return
        self._write_used_by()
        self._move_aliases()
        self.crash("sync-before-runs")
        self._write_runs()
        self.crash("sync-before-archive")
        self._archive()

    # -- versions --------------------------------------------------------------------------
    def _outbox_versions(self) -> list[VersionRecord]:
        found = []
        for project in self.outbox.list_children(keys.projects_prefix()):
            for name in self.outbox.list_children(keys.artifacts_prefix(project)):
                for number in version_numbers(self.outbox, project, name):
                    record = read_version(self.outbox, project, name, number)
                    self.offline_records[(project, name, number)] = record
                    found.append(record)
        return found

    def _publish(self, offline: VersionRecord) -> None:
        key = (offline.project, offline.name, offline.version)
        shown = f"{offline.project}/{offline.name}:v{offline.version}"
        real, created = self._already_published(offline), False
        if real is None and self.report.dry_run:
            self.report.versions.append({"outbox": shown, "published": None, "created": None})
            return
        if real is None:
            real, created = self._commit(offline)
        self.published[key] = real
        self.report.versions.append(
            {"outbox": shown, "published": f"{real.project}/{real.name}:v{real.version}", "created": created}
        )

    def _already_published(self, offline: VersionRecord) -> VersionRecord | None:
        try:
            body = self.outbox.read(keys.sync_published(offline.project, offline.name, offline.version))
        except FileNotFoundError:
            return None
        progress = parse(SyncProgress, body, "sync progress")
        return read_version(self.store.backend, offline.project, offline.name, progress.version)

    def _commit(self, offline: VersionRecord) -> tuple[VersionRecord, bool]:
        def read(sha256: str) -> bytes:
            return self.outbox_blobs.read(sha256, "file list")

        files = {f.sha256 for f in entries_of_record(read, offline) if f.ref is None}
        with Protection(self.store.blobs) as guard:
            self.report.sent.add(send_blobs(self.outbox_blobs, guard, files))
            self.report.sent.add(send_blobs(self.outbox_blobs, guard, manifest_blobs(read, offline)))
            self.crash("sync-after-blobs")
            real = find_committed(self.store, offline)
            created = real is None
            if real is None:
                result = commit_version(self.store.backend, offline, [], crash=self.crash,
                                        commit_id=offline.commit_id)
                real, created = result.record, result.created
            elif not is_deleted(self.store.backend, real.project, real.name, real.version):
                advance_latest(self.store.backend, real)  # a sync that died before it moved ``latest``
            guard.settle()
        self.crash("sync-after-version")
        progress = SyncProgress(version=real.version, commit_id=real.commit_id)
        key = keys.sync_published(offline.project, offline.name, offline.version)
        self.outbox.write(key, progress.to_bytes())
        return real, created

    # -- lineage and aliases ---------------------------------------------------------------
    def real_ref(self, ref: ArtifactRef) -> ArtifactRef:
        """A run's reference with the real number, when it names a version logged offline."""
        key = (ref.project, ref.name, ref.version)
        offline = self.offline_records.get(key)
        if offline is None or offline.digest != ref.digest or key not in self.published:
            return ref  # a version this machine saw online: its number is already real
        return self.published[key].ref()

    def _real_number(self, project: str, name: str, number: int) -> int:
        found = self.published.get((project, name, number))
        return found.version if found is not None else number

    def _write_used_by(self) -> None:
        for info in self.outbox.list(keys.projects_prefix()):
            match = _USED_BY.fullmatch(info.key)
            if match is None:
                continue
            project, name, number, entry = match.group(1), match.group(2), int(match.group(3)), match.group(4)
            real = self._real_number(project, name, number)
            key = f"{keys.used_by_prefix(project, name, real)}{entry}"
            if not self.store.backend.exists(key):
                self.store.backend.write(key, self.outbox.read(info.key))

    def _offline_aliases(self) -> list[tuple[str, str, AliasRecord]]:
        found = []
        for info in self.outbox.list(keys.projects_prefix()):
            match = _ALIAS.fullmatch(info.key)
            if match and match.group(3) != "latest":  # latest moved with each commit
                alias = parse(AliasRecord, self.outbox.read(info.key), info.key)
                found.append((match.group(1), match.group(2), alias))
        return found

    def _move_aliases(self) -> None:
        for project, name, alias in self._offline_aliases():
            shown = f"{project}/{name}:{alias.alias}"
            target = self.published.get((project, name, alias.version))
            if target is None:
                target = read_version(self.store.backend, project, name, alias.version)
            base = self._alias_base(project, name, alias.alias)
            found = read_alias(self.store.backend, project, name, alias.alias)
            current = found[0].version if found else None
            if current == target.version:
                continue
            if is_deleted(self.store.backend, project, name, target.version):
                self.report.conflicts.append(f"alias {shown} was not moved: v{target.version} was deleted in "
                                             "the store (a deletion is never undone)")
                continue
            try:
                if current != base:
                    raise ConflictError(f"now v{current}" if current is not None else "removed")
                set_alias(self.store.backend, target, alias.alias, expected_version=base)
                audit_moves(self.store, target, {alias.alias: base})  # the real numbers, as published
                self.report.aliases.append(f"{shown} -> v{target.version}")
                self.moved.setdefault((project, name, target.version), []).append(alias.alias)
            except ConflictError:
                self.report.conflicts.append(_alias_conflict(shown, base, target.version, project, name,
                                                             self.store, alias.alias))

    def _alias_base(self, project: str, name: str, alias: str) -> int | None:
        try:
            body = self.outbox.read(keys.sync_alias_base(keys.alias(project, name, alias)))
        except FileNotFoundError:
            return None
        return parse(AliasBase, body, "alias base").version

    # -- runs ------------------------------------------------------------------------------
    def _outbox_runs(self) -> list[RunRecord]:
        found = []
        for project in self.outbox.list_children(keys.projects_prefix()):
            for run_id in self.outbox.list_children(keys.runs_prefix(project)):
                key = keys.run(project, run_id)
                if self.outbox.exists(key):
                    found.append(parse(RunRecord, self.outbox.read(key), key))
        return found

    def _write_runs(self) -> None:
        for record in self._outbox_runs():
            real = record.model_copy(update={
                "inputs": [self.real_ref(r) for r in record.inputs],
                "outputs": [self.real_ref(r) for r in record.outputs],
            })
            outcome = transfer_run(self.outbox, self.outbox_blobs, self.store, real, real.to_bytes(),
                                   replace=False, sent=self.report.sent)
            if outcome == "conflict":
                self.report.conflicts.append(
                    f"run {record.project}/{record.id} already exists in the store with other contents: "
                    "left as it is"
                )
            elif outcome == "written":
                self.report.runs.append(f"{record.project}/{record.id}")

    def _list_aliases_and_runs(self) -> None:
        for project, name, alias in self._offline_aliases():
            self.report.aliases.append(f"{project}/{name}:{alias.alias} -> outbox v{alias.version}")
        for record in self._outbox_runs():
            if not self.store.backend.exists(keys.run(record.project, record.id)):
                self.report.runs.append(f"{record.project}/{record.id}")

    # -- done ------------------------------------------------------------------------------
    def _archive(self) -> None:
        """Move the outbox aside and remember the real versions for the next offline session."""
        seen = LocalBackend(seen_dir(self.store.settings))
        for real in self.published.values():
            moved = self.moved.get((real.project, real.name, real.version), [])
            remember_record(seen, real, ["latest", *moved])
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        target = synced_dir(self.store.settings) / f"{stamp}-{uuid.uuid4().hex[:6]}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.outbox.root, target)
        self.report.archived_to = str(target)


def find_committed(store: Store, offline: VersionRecord) -> VersionRecord | None:
    """The real version an earlier, interrupted sync committed for ``offline`` (same commit id)."""
    prefix = keys.digest_index_prefix(offline.project, offline.name, offline.digest)
    for info in store.backend.list(prefix):
        number = info.key.rsplit("/v", 1)[-1].removesuffix(".json")
        try:
            record = read_version(store.backend, offline.project, offline.name, int(number))
        except (LookupError, ValueError, IntegrityError):
            continue
        if record.commit_id == offline.commit_id:
            return record
    return None


def _alias_conflict(shown: str, base: int | None, wanted: int, project: str, name: str, store: Store,
                    alias: str) -> str:
    found = read_alias(store.backend, project, name, alias)
    now_at = f"v{found[0].version}" if found else "nowhere"
    was = f"v{base}" if base is not None else "nowhere"
    return (f"alias {shown} points to {now_at} in the store (it pointed to {was} when it moved offline): "
            f"left there, not moved to v{wanted}; to move it: "
            f"registry alias set {project}/{name}:v{wanted} {alias}")
