"""``registry copy``: mirror projects or artifacts from one store to another, numbers and all.

Unlike ``sync`` (which gives new versions new numbers), a copy keeps every version record byte
for byte: same number, digest, commit id and creation time. It is incremental (versions and
blobs the destination holds are skipped), verified (every blob read is checked against its
sha256, every blob written is checked by the destination) and resumable (blobs go first, each
version record is written only by write-if-absent once its blobs are there, aliases and runs
last, so a killed copy run again simply continues). A destination whose history diverged
(``v3`` there holds other contents than ``v3`` here) is refused before anything is written.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import keys
from .blob_transfer import Sent, send_blobs
from .endpoints import open_side
from .errors import ConflictError, InvalidNameError, NotFoundError
from .filelists import read_file_list
from .names import parse_address, validate_name
from .protection import Protection
from .records import DigestIndexEntry, RunRecord, VersionRecord, parse
from .run_transfer import transfer_run
from .store import Store
from .versions import advance_latest, aliases_of, read_version, resolve, set_alias, version_numbers

ArtifactKey = tuple[str, str]
CrashPoint = Callable[[str], None]


def _no_crash(point: str) -> None:
    pass


class DivergedError(ConflictError):
    """The destination holds a version that the source holds with other contents (or not at all)."""


@dataclass
class Selection:
    """What to copy: versions ``0..upto`` of each artifact (``None``: all), and which runs."""

    artifacts: dict[ArtifactKey, int | None] = field(default_factory=dict)
    run_projects: list[str] = field(default_factory=list)
    """Projects whose every run is copied (a whole-project copy)."""
    runs: set[tuple[str, str]] = field(default_factory=set)
    """Single runs: those that logged the selected versions."""


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


def select(source: Store, projects: list[str], addresses: list[str], default_project: str) -> Selection:
    """Whole ``projects``, plus each address's artifact up to the version it names, the runs that
    logged those versions and, upstream, the versions those runs used: the lineage travels along."""
    selection = Selection()
    for project in projects:
        validate_name(project, "project")
        names = source.backend.list_children(keys.artifacts_prefix(project))
        if not names and not source.backend.list_children(keys.runs_prefix(project)):
            raise NotFoundError(
                f"project {project!r} does not exist in {source.url}: list projects with `registry ls`"
            )
        selection.artifacts.update({(project, name): None for name in names})
        selection.run_projects.append(project)
    todo = [(r.project, r.name, r.version)
            for r in (resolve(source.backend, parse_address(text, default_project)) for text in addresses)]
    while todo:
        project, name, number = todo.pop()
        known = selection.artifacts.get((project, name), -1)
        if known is None or known >= number or project in selection.run_projects:
            continue
        selection.artifacts[(project, name)] = number
        for older in range(known + 1, number + 1):
            todo.extend(_upstream(source, project, name, older, selection))
    return selection


def _upstream(source: Store, project: str, name: str, number: int,
              selection: Selection) -> list[tuple[str, str, int]]:
    """The versions the run that logged ``project/name:v<number>`` used (and note that run)."""
    creator = read_version(source.backend, project, name, number).created_by
    if creator is None or (creator.project, creator.id) in selection.runs:
        return []
    selection.runs.add((creator.project, creator.id))
    try:
        run = parse(RunRecord, source.backend.read(keys.run(creator.project, creator.id)), "run record")
    except FileNotFoundError:
        return []
    return [(ref.project, ref.name, ref.version) for ref in run.inputs]


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
    for (project, name), numbers in plans.items():
        _copy_versions(source, dest, project, name, numbers, report, crash)
        _copy_used_by(source, dest, project, name, selection.artifacts[(project, name)])
        _copy_aliases(source, dest, project, name, selection.artifacts[(project, name)], report)
    crash("copy-before-runs")
    for project, run_id in _runs(source, selection):
        _copy_run(source, dest, project, run_id, selection, report)
    return report


def _numbers(store: Store, project: str, name: str, upto: int | None) -> list[int]:
    return [n for n in version_numbers(store.backend, project, name) if upto is None or n <= upto]


def _plan(source: Store, dest: Store, key: ArtifactKey, upto: int | None, report: CopyReport) -> list[int]:
    """The versions to write; raises ``DivergedError`` when the destination's history differs."""
    project, name = key
    wanted = _numbers(source, project, name, upto)
    there = set(version_numbers(dest.backend, project, name))
    for number in sorted(there & set(wanted)):
        ours = read_version(source.backend, project, name, number)
        theirs = read_version(dest.backend, project, name, number)
        if ours.digest != theirs.digest:
            raise DivergedError(
                f"{dest.url} has {project}/{name}:v{number} with digest {theirs.digest[:12]}..., "
                f"but {source.url} has {ours.digest[:12]}... under that number: the histories diverged; "
                "nothing was copied (copy into another prefix or bucket, "
                "or remove the destination's artifact)"
            )
    todo = [n for n in wanted if n not in there]
    report.present += len(wanted) - len(todo)
    if report.dry_run:
        report.copied.extend(f"{project}/{name}:v{n}" for n in todo)
    return todo


def _copy_versions(source: Store, dest: Store, project: str, name: str, numbers: list[int],
                   report: CopyReport, crash: CrashPoint) -> None:
    for number in numbers:  # in order: the destination's numbers stay dense whenever a copy stops
        record = read_version(source.backend, project, name, number)
        files = read_file_list(source, record)
        with Protection(dest.blobs) as guard:
            report.sent.add(send_blobs(source.blobs, guard, {f.sha256 for f in files.files}))
            report.sent.add(send_blobs(source.blobs, guard, {record.digest}))
            crash("copy-after-blobs")
            _write_version(source, dest, record)
            guard.settle()
        crash("copy-after-version")
        report.copied.append(f"{project}/{name}:v{number}")


def _copy_used_by(source: Store, dest: Store, project: str, name: str, upto: int | None) -> None:
    """Used-by entries of the copied versions that the destination lacks (one listing per side)."""
    prefix = f"{keys.artifact_prefix(project, name)}used-by/"
    there = {info.key for info in dest.backend.list(prefix)}
    for info in source.backend.list(prefix):
        number = int(info.key[len(prefix):].split("/", 1)[0].removeprefix("v"))
        if info.key not in there and (upto is None or number <= upto):
            dest.backend.write(info.key, source.backend.read(info.key))


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
        if theirs.digest != record.digest:
            raise DivergedError(
                f"{record.project}/{record.name}:v{record.version} was written in {dest.url} by another "
                "writer during the copy, with other contents: the histories diverged"
            ) from None


def _copy_aliases(source: Store, dest: Store, project: str, name: str, upto: int | None,
                  report: CopyReport) -> None:
    """``latest`` moves forward only; another alias is set unless the destination moved it to a
    version the source does not hold (then the destination's choice is kept)."""
    shared = set(_numbers(source, project, name, upto))
    theirs = {a: v for v, names in aliases_of(dest.backend, project, name).items() for a in names}
    for number, names in aliases_of(source.backend, project, name).items():
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
