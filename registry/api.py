"""``Api``: read and manage a store without a run (a deployment host, the CLI, the web UI).

>>> api = Api()                                              # doctest: +SKIP
>>> model = api.artifact("mnist-pipeline/trained-model:best")  # doctest: +SKIP
>>> model.download("./model")                                 # doctest: +SKIP
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import active, alias_moves, keys
from .api_run import ApiRun
from .artifact import Artifact
from .audit_log import read_log
from .collections import ArtifactCollection as Collection
from .errors import NotFoundError
from .lifecycle import deleted_numbers, live_version_numbers, tagged_numbers
from .lineage import Direction, LineageGraph
from .lineage_trace import trace
from .names import parse_address, validate_alias, validate_name
from .records import ArtifactRef, AuditEntry, FileEntry, RunRecord, VersionRecord
from .run_records import find_run, read_run, read_runs, run_ids, users_of
from .seen import remember
from .store import Store, open_store
from .versions import (
    aliases_of,
    did_you_mean,
    latest_number,
    missing_artifact,
    read_version,
    resolve,
    version_numbers,
)

__all__ = ["Api", "ApiRun", "ArtifactCollection"]


@dataclass
class ArtifactCollection:
    """One named artifact of a project: its type, versions and latest version."""

    project: str
    name: str
    type: str
    version_count: int
    latest: Artifact
    aliases: dict[int, list[str]]

    @property
    def updated_at(self) -> datetime:
        return self.latest.created_at


class Api:
    """Read-only and management calls on one store (``url`` or ``REGISTRY_URL`` or the local default)."""

    def __init__(self, url: str | None = None, *, store: Store | None = None,
                 mode: str | None = None) -> None:
        """``mode="offline"`` (or ``REGISTRY_MODE=offline``): read what this machine saw, send nothing."""
        self.store = store or open_store(url, mode)
        self.default_project = self.store.settings.project

    @property
    def url(self) -> str:
        return self.store.url

    def _project(self) -> str:
        return active.project_or(self.default_project)

    # -- artifacts -------------------------------------------------------------------------
    def artifact(self, address: str, type: str | None = None) -> Artifact:
        """The version an address names: ``[project/]name[:alias|:vN|@sha256:<digest>]``."""
        parsed = parse_address(address, self._project())
        with self.store.explain_missing():
            record = resolve(self.store.backend, parsed)
        remember(self.store, parsed, record)
        if type is not None and record.type != type:
            raise NotFoundError(
                f"{record.project}/{record.name}:v{record.version} has type {record.type!r}, not {type!r}"
            )
        return self._bind(record)

    def _bind(self, record: VersionRecord, aliases: dict[int, list[str]] | None = None) -> Artifact:
        known = None if aliases is None else aliases.get(record.version, [])
        return Artifact.from_record(self.store, record, known)

    def _artifact_from_ref(self, ref: ArtifactRef) -> Artifact:
        return self._bind(read_version(self.store.backend, ref.project, ref.name, ref.version))

    def projects(self) -> list[str]:
        names = self.store.backend.list_children(keys.projects_prefix())
        if not names:
            self.store.require_present()  # a typo in the URL is not an empty store
        return names

    def require_project(self, project: str) -> None:
        """Raise ``NotFoundError`` (naming close matches) unless ``project`` exists in this store."""
        projects = self.projects()
        if validate_name(project, "project") not in projects:
            raise NotFoundError(
                f"project {project!r} does not exist in {self.url}{did_you_mean(project, projects)}: "
                "list projects with `registry ls`"
            )

    def artifact_names(self, project: str) -> list[str]:
        return self.store.backend.list_children(keys.artifacts_prefix(validate_name(project, "project")))

    def artifacts(self, project: str, type: str | None = None) -> list[ArtifactCollection]:
        """Every artifact of a project (optionally of one type), with its latest version."""
        def collection(name: str) -> ArtifactCollection | None:
            top = latest_number(self.store.backend, project, name)  # numbers are dense: no listing
            gone = deleted_numbers(self.store.backend, project, name)
            if top is None or len(gone) > top:
                return None  # no versions, or all deleted
            aliases = aliases_of(self.store.backend, project, name)
            shown = next((v for v, a in aliases.items() if "latest" in a), top)
            if shown in gone:
                shown = max(set(range(top + 1)) - gone)
            latest = self._bind(read_version(self.store.backend, project, name, shown), aliases)
            latest.tags  # noqa: B018 - edits and tags read here, in parallel
            return ArtifactCollection(project, name, latest.type, top + 1 - len(gone), latest, aliases)

        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            found = list(pool.map(collection, self.artifact_names(project)))
        return [c for c in found if c is not None and (type is None or c.type == type)]

    def artifact_versions(self, collection: str, name: str | None = None, per_page: int = 50, *,
                          limit: int | None = None) -> list[Artifact]:
        """All versions of ``project/name`` (or the ``limit`` newest), oldest first; deleted ones
        are left out. W&B's form, ``artifact_versions(type_name, name)``, works too.

        With a limit, only those records are read, and nothing is listed: version numbers are
        dense, so the newest are the ``limit`` numbers up to ``latest`` (and any just above it).
        """
        if name is not None:  # W&B: (type_name, name); the type is checked below
            return self.artifact_collection(collection, name).versions()
        address = parse_address(collection, self._project(), default_alias=None)
        if limit is None:
            numbers = live_version_numbers(self.store.backend, address.project, address.name)
        else:
            top = latest_number(self.store.backend, address.project, address.name)
            gone = deleted_numbers(self.store.backend, address.project, address.name)
            live = [] if top is None else [n for n in range(top, -1, -1) if n not in gone]
            numbers = sorted(live[:limit])
        if not numbers:
            self.store.require_present()
            raise missing_artifact(self.store.backend, address.project, address.name)
        aliases = aliases_of(self.store.backend, address.project, address.name)
        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            records = list(pool.map(
                lambda n: read_version(self.store.backend, address.project, address.name, n), numbers
            ))
            versions = [self._bind(r, aliases) for r in records]
            list(pool.map(lambda v: v.tags, versions))  # edits and tags, read in parallel, not one by one
        return versions

    def set_alias(self, address: str, alias: str, expected_version: int | None = None) -> bool:
        """Point ``alias`` at the version ``address`` names (e.g. promote to ``best``); the move
        goes into the audit log."""
        record = resolve(self.store.backend, parse_address(address, self._project()))
        return alias_moves.set_alias(self.store, record, alias, expected_version=expected_version)

    def remove_alias(self, collection: str, alias: str) -> None:
        address = parse_address(collection, self._project(), default_alias=None)
        validate_alias(alias, settable=True)
        # the conditional delete must be enforced: alias_moves runs the probe first
        alias_moves.remove(self.store, address.project, address.name, alias)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether ``name`` resolves to a version (of ``type``, if given)."""
        try:
            self.artifact(name, type)
        except NotFoundError:
            return False
        return True

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        """Whether ``[project/]name`` has versions left, of ``type``."""
        try:
            return bool(self.artifact_collection(type, name).versions())
        except NotFoundError:
            return False

    # -- collections, tags and the audit log -------------------------------------------------
    def artifact_collection(self, type_name: str, name: str) -> Collection:
        """W&B's handle on ``[project/]name`` -- e.g. ``registry/mnist`` -- with its aliases, tags,
        description and versions.

        >>> Api().artifact_collection("model", "registry/mnist").aliases   # doctest: +SKIP
        ['latest', 'production']
        """
        address = parse_address(name, self._project(), default_alias=None)
        with self.store.explain_missing():
            found = Collection(self.store, address.project, address.name, self._bind)
        if found.type != type_name:
            raise NotFoundError(f"{address.collection} holds {found.type!r} versions, not {type_name!r}")
        return found

    def artifact_collections(self, project_name: str, type_name: str) -> list[Collection]:
        """Every collection of a project (``registry`` for the registry) holding ``type_name``."""
        project = parse_address(f"{project_name}/x", self._project()).project
        return [Collection(self.store, c.project, c.name, self._bind)
                for c in self.artifacts(project, type=type_name)]

    def tagged(self, project: str, tag: str) -> list[Artifact]:
        """The versions of a project carrying ``tag`` (reads only versions that have annotations)."""
        found = []
        for name in self.artifact_names(validate_name(project, "project")):
            for number in tagged_numbers(self.store.backend, project, name, tag):
                found.append(self._bind(read_version(self.store.backend, project, name, number)))
        return found

    def audit_trail(self, address: str, limit: int | None = None) -> list[AuditEntry]:
        """The audit log of an artifact or registry collection, oldest first: every alias move,
        link, unlink, delete, retention action and edit, with who, when and from -> to (only the
        ``limit`` newest, if given: the rest are listed, not read).

        >>> Api().audit_trail("registry/mnist")[-1].action   # doctest: +SKIP
        'alias.set'
        """
        target = parse_address(address, self._project(), default_alias=None)
        with self.store.explain_missing():
            if not version_numbers(self.store.backend, target.project, target.name):
                raise missing_artifact(self.store.backend, target.project, target.name)
        return read_log(self.store.backend, target.project, target.name, limit, self.store.settings.workers)

    # -- runs ------------------------------------------------------------------------------
    def _run_handle(self, record: RunRecord) -> ApiRun:
        return ApiRun(self.store, record, self._artifact_from_ref)

    def run(self, path: str, *, by_name: bool = True) -> ApiRun:
        """A run by ``project/run-id``, or by ``project/run-name`` (which reads every run of the project)."""
        project, _, run_id = path.rpartition("/")
        project = validate_name(project or self._project(), "project")
        with self.store.explain_missing():
            if by_name:
                found = find_run(self.store.backend, project, run_id, self.store.settings.workers)
                return self._run_handle(found)
            return self._run_handle(read_run(self.store.backend, project, run_id))

    def runs(self, project: str, *, limit: int | None = None) -> list[ApiRun]:
        """Every run of a project (or the ``limit`` newest), newest first.

        With a limit, only about that many run records are read, however many runs the project has.
        """
        records = read_runs(self.store.backend, project, self.store.settings.workers, limit=limit)
        return [self._run_handle(r) for r in records]

    def used_by(self, record: VersionRecord) -> list[ApiRun]:
        """Runs that used a version, read in parallel."""
        users = users_of(self.store.backend, record, self.store.settings.workers)
        return [self._run_handle(r) for r in users]

    # -- lineage ---------------------------------------------------------------------------
    def lineage(self, address: str, direction: Direction = "both", depth: int | None = None) -> LineageGraph:
        """The runs and versions upstream and/or downstream of one version."""
        record = self.artifact(address).record
        return trace(self.store.backend, record, direction, depth, self.store.settings.workers)

    # -- listings and files for viewers (the web UI): nothing read that a page does not show --
    def run_ids(self, project: str) -> list[str]:
        """The ids of a project's runs, from one listing (no run record is read): cheap counts."""
        return run_ids(self.store.backend, project)

    def version_numbers(self, collection: str) -> list[int]:
        """The version numbers of ``project/name``, oldest first, from one listing (no record is read).

        ``artifact_versions`` reads every record; a page listing 1,000 versions needs only this.

        >>> Api().version_numbers("mnist-pipeline/mnist-raw")   # doctest: +SKIP
        [0, 1, 2]
        """
        address = parse_address(collection, self._project(), default_alias=None)
        return live_version_numbers(self.store.backend, address.project, address.name)

    def aliases(self, collection: str) -> dict[int, list[str]]:
        """Version number -> its aliases (``latest`` first) for ``project/name``, without reading a
        version record.

        >>> Api().aliases("mnist-pipeline/trained-model")       # doctest: +SKIP
        {0: ['latest', 'best']}
        """
        address = parse_address(collection, self._project(), default_alias=None)
        return aliases_of(self.store.backend, address.project, address.name)

    def cached_file(self, entry: FileEntry) -> Path:
        """A verified local copy of one file (an entry of a version's file list or of a run's files).

        It is the download cache's entry (for a local store, the blob in place), shared with
        every download: read it, never write to it. For serving a file without copying it.

        >>> artifact = Api().artifact("mnist-pipeline/mnist-raw:v0")                  # doctest: +SKIP
        >>> path = Api().cached_file(artifact.file_list().by_path()["README.md"])    # doctest: +SKIP
        """
        path = self.store.cache.ensure(entry.sha256, entry.size, what=entry.path, chunks=entry.chunks)
        self.store.cache.touch([path])
        self.store.cache.clean(keep=frozenset([path]))  # REGISTRY_CACHE_MAX (if set): evict, but not this one
        return path

