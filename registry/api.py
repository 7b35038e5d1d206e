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

from . import active, keys
from .api_run import ApiRun
from .artifact import Artifact
from .errors import NotFoundError
from .lineage import Direction, LineageGraph
from .lineage_trace import trace
from .names import parse_address, validate_alias, validate_name
from .records import ArtifactRef, FileEntry, RunRecord, VersionRecord
from .run_records import find_run, read_run, read_runs, run_ids, users_of
from .seen import remember
from .store import Store, open_store
from .versions import (
    aliases_of,
    did_you_mean,
    latest_number,
    missing_artifact,
    read_version,
    remove_alias,
    resolve,
    set_alias,
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
            if top is None:
                return None
            aliases = aliases_of(self.store.backend, project, name)
            shown = next((v for v, a in aliases.items() if "latest" in a), top)
            latest = self._bind(read_version(self.store.backend, project, name, shown), aliases)
            return ArtifactCollection(project, name, latest.type, top + 1, latest, aliases)

        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            found = list(pool.map(collection, self.artifact_names(project)))
        return [c for c in found if c is not None and (type is None or c.type == type)]

    def artifact_versions(self, collection: str, *, limit: int | None = None) -> list[Artifact]:
        """All versions of ``project/name`` (or the ``limit`` newest), oldest first.

        With a limit, only those records are read, and nothing is listed: version numbers are
        dense, so the newest are the ``limit`` numbers up to ``latest`` (and any just above it).
        """
        address = parse_address(collection, self._project(), default_alias=None)
        if limit is None:
            numbers = version_numbers(self.store.backend, address.project, address.name)
        else:
            top = latest_number(self.store.backend, address.project, address.name)
            numbers = [] if top is None else list(range(max(0, top - limit + 1), top + 1))
        if not numbers:
            self.store.require_present()
            raise missing_artifact(self.store.backend, address.project, address.name)
        aliases = aliases_of(self.store.backend, address.project, address.name)
        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            records = list(pool.map(
                lambda n: read_version(self.store.backend, address.project, address.name, n), numbers
            ))
        return [self._bind(r, aliases) for r in records]

    def set_alias(self, address: str, alias: str, expected_version: int | None = None) -> bool:
        """Point ``alias`` at the version ``address`` names (e.g. promote to ``best``)."""
        record = resolve(self.store.backend, parse_address(address, self._project()))
        self.store.check_writable()
        return set_alias(self.store.backend, record, alias, expected_version=expected_version)

    def remove_alias(self, collection: str, alias: str) -> None:
        address = parse_address(collection, self._project(), default_alias=None)
        validate_alias(alias, settable=True)
        self.store.check_writable()  # the conditional delete must be enforced (the probe proves it)
        remove_alias(self.store.backend, address.project, address.name, alias)

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
        return version_numbers(self.store.backend, address.project, address.name)

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
        path = self.store.cache.ensure(entry.sha256, entry.size, what=entry.path)
        self.store.cache.touch([path])
        self.store.cache.clean(keep=frozenset([path]))  # REGISTRY_CACHE_MAX (if set): evict, but not this one
        return path

