"""``registry copy``: mirror projects or artifacts from one store to another, numbers and all.

Unlike ``sync`` (which gives new versions new numbers), a copy keeps every version record byte
for byte: same number, digest, commit id and creation time. It is incremental (versions and
blobs the destination holds are skipped), verified (every blob read is checked against its
sha256, every blob written is checked by the destination) and resumable (blobs go first, each
version record is written only by write-if-absent once its blobs are there, aliases and runs
last, so a killed copy run again simply continues). A destination whose history diverged
(``v3`` there holds other contents than ``v3`` here) is refused before anything is written.

The lifecycle travels too (``mirror_lifecycle``): a version deleted at the source arrives with
its tombstone written before its record (its blobs, perhaps collected already, are not
sent), so it is never alive at the destination; annotations, collection info, retention
policies, link-index entries and the audit log follow. A registry link brings the version it
links (and that version's lineage), copied before the link, so the link resolves there.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import keys
from .blob_transfer import Sent, send_packs, send_version
from .endpoints import open_side
from .errors import ConflictError, InvalidNameError
from .mirror_lifecycle import (
    copy_audit_log,
    copy_document,
    copy_documents,
    copy_tombstone,
    copy_version_entries,
    deleted_at,
    settle_deleted_aliases,
)
from .mirror_selection import ArtifactKey, Selection, numbers_upto, select
from .protection import Protection, wait_while_collecting
from .records import DigestIndexEntry, RunRecord, VersionRecord, parse
from .run_transfer import transfer_run
from .store import Store
from .versions import (
    advance_latest,
    aliases_of,
    read_version,
    set_alias,
    version_numbers,
)

CrashPoint = Callable[[str], None]


def _no_crash(point: str) -> None:
    pass


class DivergedError(ConflictError):
    """The destination holds a version that the source holds with other contents (or not at all)."""


@dataclass
class CopyReport:
    source: str
    destination: str
    dry_run: bool = False
    copied: list[str] = field(default_factory=list)
    """Versions written (or, in a dry run, to write)."""
    present: int = 0
    aliases: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    sent: Sent = field(default_factory=Sent)
    deleted: list[str] = field(default_factory=list)
    """Tombstones written: versions deleted at the source, now deleted here too."""
    updated: list[str] = field(default_factory=list)
    """Annotations, collection info and retention policies written (absent, or the source's differed)."""
    audit: int = 0
    """Audit entries (and link-index entries) the destination lacked."""
    kept_deleted: list[str] = field(default_factory=list)
    """Source aliases not set because the destination deleted their version (deletion stands)."""


def copy(source: Store, dest: Store, selection: Selection, *, dry_run: bool = False,
         crash: CrashPoint = _no_crash) -> CopyReport:
    """Copy ``selection`` from ``source`` into ``dest``; ``DivergedError`` before any write if unsafe.

    ``crash`` is called at named points (``copy-after-blobs``, ``copy-after-version``,
    ``copy-before-runs``): the crash tests stop a copy there.

    >>> copy(open_store("s3://lab/ml"), open_store("/mnt/disk/ml"),                 # doctest: +SKIP
    ...      select(open_store("s3://lab/ml"), ["mnist-pipeline"], [], "uncategorized"))
    """
    report = CopyReport(source=source.url, destination=dest.url, dry_run=dry_run)
    plans = {key: _plan(source, dest, key, upto, report) for key, upto in selection.artifacts.items()}
    if dry_run:
        return report
    dest.check_writable()
    for key in sorted(plans, key=lambda k: k in selection.link_collections):  # sources before links
        project, name = key
        upto = selection.artifacts[key]
        deleted = deleted_at(source, project, name)
        _copy_versions(source, dest, project, name, plans[key], deleted, report, crash)
        deleted_here = _copy_lifecycle(source, dest, project, name, upto, deleted, report)
        _copy_aliases(source, dest, project, name, upto, deleted_here, report)
    for project in selection.run_projects:
        if copy_document(source, dest, keys.project_retention(project)):
            report.updated.append(keys.project_retention(project))
    crash("copy-before-runs")
    for project, run_id in _runs(source, selection):
        _copy_run(source, dest, project, run_id, selection, report)
    return report


def _plan(source: Store, dest: Store, key: ArtifactKey, upto: int | None, report: CopyReport) -> list[int]:
    """The versions to write; raises ``DivergedError`` when the destination's history differs."""
    project, name = key
    wanted = numbers_upto(source, project, name, upto)
    there = set(version_numbers(dest.backend, project, name))
    for number in sorted(there & set(wanted)):
        ours = read_version(source.backend, project, name, number)
        theirs = read_version(dest.backend, project, name, number)
        if ours.digest != theirs.digest or ours.source != theirs.source:  # a link: which source, too
            raise DivergedError(
                f"{dest.url} has {project}/{name}:v{number} with {_contents(theirs)}, "
                f"but {source.url} has {_contents(ours)} under that number: the histories diverged; "
                "nothing was copied (copy into another prefix or bucket, "
                "or remove the destination's artifact)"
            )
    todo = [n for n in wanted if n not in there]
    report.present += len(wanted) - len(todo)
    if report.dry_run:
        report.copied.extend(f"{project}/{name}:v{n}" for n in todo)
    return todo


def _contents(record: VersionRecord) -> str:
    linked = f" (a link to {record.source.qualified_name})" if record.source is not None else ""
    return f"digest {record.digest[:12]}...{linked}"


def _copy_versions(source: Store, dest: Store, project: str, name: str, numbers: list[int], gone: set[int],
                   report: CopyReport, crash: CrashPoint) -> None:
    for number in numbers:  # in order: the destination's numbers stay dense whenever a copy stops
        record = read_version(source.backend, project, name, number)
        if number in gone:  # tombstone first: never alive here; no blobs (gc may have taken them)
            if copy_tombstone(source, dest, project, name, number):
                report.deleted.append(f"{project}/{name}:v{number}")
            _write_version(source, dest, record)
            report.copied.append(f"{project}/{name}:v{number}")
            continue
        with Protection(dest.blobs) as guard:
            sent, packs = send_version(source, guard, record)
            report.sent.add(sent)
            crash("copy-after-blobs")
            _write_version(source, dest, record)
            guard.settle()
            if packs:  # a collector that ran meanwhile may have taken a pack found there: send it again
                wait_while_collecting(dest.backend)
                again = send_packs(source, guard, packs)
                report.sent.add(Sent(blobs=again.blobs, bytes=again.bytes))  # the rest were counted above
        crash("copy-after-version")
        report.copied.append(f"{project}/{name}:v{number}")


def _copy_lifecycle(source: Store, dest: Store, project: str, name: str, upto: int | None,
                    deleted: set[int], report: CopyReport) -> set[int]:
    """Deletions of versions the destination held already, then what only grows (used-by,
    link-index and audit entries), then the mutable documents (the source's win)."""
    there = deleted_at(dest, project, name)
    wanted = {n for n in deleted if upto is None or n <= upto}
    for number in sorted(wanted - there):
        if copy_tombstone(source, dest, project, name, number):
            report.deleted.append(f"{project}/{name}:v{number}")
    deleted_here = there | wanted
    settle_deleted_aliases(dest, project, name, deleted_here)
    root = keys.artifact_prefix(project, name)
    copy_version_entries(source, dest, f"{root}used-by/", upto)
    report.audit += copy_version_entries(source, dest, f"{root}linked-to/", upto)
    report.audit += copy_audit_log(source, dest, project, name, upto)
    report.updated.extend(copy_documents(source, dest, project, name, upto))
    return deleted_here


def _write_version(source: Store, dest: Store, record: VersionRecord) -> None:
    entry = DigestIndexEntry(version=record.version).to_bytes()
    try:
        dest.backend.write_if_absent(keys.digest_index(record.project, record.name, record.digest,
                                                       record.version), entry)
    except FileExistsError:
        pass
    key = keys.version(record.project, record.name, record.version)
    try:
        dest.backend.write_if_absent(key, source.backend.read(key))
    except FileExistsError:
        theirs = read_version(dest.backend, record.project, record.name, record.version)
        if theirs.digest != record.digest or theirs.source != record.source:
            raise DivergedError(
                f"{record.project}/{record.name}:v{record.version} was written in {dest.url} by another "
                "writer during the copy, with other contents: the histories diverged"
            ) from None


def _copy_aliases(source: Store, dest: Store, project: str, name: str, upto: int | None, gone: set[int],
                  report: CopyReport) -> None:
    """``latest`` moves forward only; another alias is set unless the destination moved it to a
    version the source does not hold (then the destination's choice is kept), or the
    destination deleted the version it names (a deletion is never undone)."""
    shared = set(numbers_upto(source, project, name, upto)) - gone
    theirs = {a: v for v, names in aliases_of(dest.backend, project, name).items() for a in names}
    for number, names in aliases_of(source.backend, project, name).items():
        if number in gone:
            report.kept_deleted.extend(f"{project}/{name}:{a}" for a in names if a != "latest")
        if number not in shared:
            continue
        record = read_version(dest.backend, project, name, number)
        for alias in names:
            current = theirs.get(alias)
            if current == number or (current is not None and current not in shared):
                continue
            if alias == "latest":
                advance_latest(dest.backend, record)
            else:
                set_alias(dest.backend, record, alias, expected_version=current)
            report.aliases.append(f"{project}/{name}:{alias} -> v{number}")
    if shared:  # the highest copied version, even when the source's latest lies beyond ``upto``
        advance_latest(dest.backend, read_version(dest.backend, project, name, max(shared)))


def _runs(source: Store, selection: Selection) -> list[tuple[str, str]]:
    found = set(selection.runs)
    for project in selection.run_projects:
        found.update((project, run_id) for run_id in source.backend.list_children(keys.runs_prefix(project)))
    return sorted(found)


def _copy_run(source: Store, dest: Store, project: str, run_id: str, selection: Selection,
              report: CopyReport) -> None:
    key = keys.run(project, run_id)
    try:
        body = source.backend.read(key)
    except FileNotFoundError:
        return  # a run directory without a record (its first write never landed)
    record = parse(RunRecord, body, key)
    outcome = transfer_run(source.backend, source.blobs, dest, record, body, replace=True, sent=report.sent)
    if outcome == "written":
        report.runs.append(f"{project}/{run_id}")


def copy_store(source_url: str, dest_url: str, *, projects: Sequence[str] = (), addresses: Sequence[str] = (),
               default_project: str = "uncategorized", dry_run: bool = False,
               source_endpoint: str | None = None, source_profile: str | None = None,
               dest_endpoint: str | None = None, dest_profile: str | None = None,
               crash: CrashPoint = _no_crash) -> CopyReport:
    """Mirror whole ``projects`` and/or single artifacts (``addresses``, each up to the version it
    names) from one store to another; each side may have its own S3 endpoint and profile.

    >>> copy_store("s3://lab/ml", "/mnt/disk/ml", projects=["mnist-pipeline"])   # doctest: +SKIP
    """
    if not projects and not addresses:
        raise InvalidNameError("nothing to copy: name a --project or at least one ADDRESS")
    source = open_side(source_url, source_endpoint, source_profile)
    dest = open_side(dest_url, dest_endpoint, dest_profile)
    with source.explain_missing():
        selection = select(source, list(projects), list(addresses), default_project)
    return copy(source, dest, selection, dry_run=dry_run, crash=crash)
