"""``Api``: read and manage a store without a run (a deployment host, the CLI, the web UI).

>>> api = Api()                                              # doctest: +SKIP
>>> model = api.artifact("mnist-pipeline/trained-model:best")  # doctest: +SKIP
>>> model.download("./model")                                 # doctest: +SKIP
"""
from __future__ import annotations

import json
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from . import keys
from .artifact import Artifact
from .errors import IntegrityError, NotFoundError
from .lineage import LineageGraph, Node
from .names import parse_address, validate_alias, validate_digest, validate_name
from .records import ArtifactRef, FileEntry, RunRecord, RunRef, UsedByEntry, VersionRecord, parse
from .store import Store, open_store
from .versions import aliases_of, did_you_mean, missing_artifact, read_version, remove_alias, resolve, set_alias, version_numbers


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


class ApiRun:
    """A run as read back from the store."""

    def __init__(self, api: "Api", record: RunRecord) -> None:
        self._api = api
        self.record = record
        self.id, self.name, self.project = record.id, record.name, record.project
        self.job_type, self.state = record.job_type, record.state
        self.config: dict[str, Any] = dict(record.config)
        self.summary: dict[str, Any] = dict(record.summary)
        self.tags, self.notes, self.error = record.tags, record.notes, record.error
        self.created_at, self.ended_at = record.started_at, record.ended_at

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"

    def used_artifacts(self) -> list[Artifact]:
        return [self._api._artifact_from_ref(ref) for ref in self.record.inputs]

    def logged_artifacts(self) -> list[Artifact]:
        return [self._api._artifact_from_ref(ref) for ref in self.record.outputs]

    def history(self) -> list[dict[str, Any]]:
        """Every logged row, in order (images appear as ``{"_type": "image", "sha256": ...}``)."""
        rows = []
        for seq in range(self.record.history_chunks):
            key = keys.history_chunk(self.project, self.id, seq)
            try:
                text = self._api.store.backend.read(key).decode()
                rows.extend(json.loads(line) for line in text.splitlines() if line)
            except FileNotFoundError:
                continue
            except ValueError:
                raise IntegrityError(f"malformed history chunk {key}: repair or delete it") from None
        return rows

    def files(self):
        return list(self.record.files)

    @cached_property
    def image_shas(self) -> frozenset[str]:
        """The sha256 of every image the history references (``registry.Image`` values); read once."""
        found: set[str] = set()
        for row in self.history():
            for value in row.values():
                items = value if isinstance(value, list) else [value]
                found.update(i["sha256"] for i in items if isinstance(i, dict) and i.get("_type") == "image" and isinstance(i.get("sha256"), str))
        return frozenset(found)

    def image(self, sha256: str) -> bytes:
        """The PNG bytes of an image this run logged, verified against its hash.

        Any other blob is ``NotFoundError``: a viewer (the web UI) can serve a run's images by
        hash without opening the rest of the store to whoever guesses a hash.

        >>> run = Api().run("mnist-pipeline/1a2b3c4d")                   # doctest: +SKIP
        >>> png = run.image(run.history()[0]["examples"][0]["sha256"])   # doctest: +SKIP
        """
        digest = validate_digest(sha256)
        if digest not in self.image_shas:
            raise NotFoundError(f"run {self.path} logged no image with sha256 {digest}: its images are in run.history()")
        return self._api.store.blobs.read(digest, what="image")

    def __repr__(self) -> str:
        return f"<ApiRun {self.path} ({self.name}, {self.job_type}, {self.state})>"


class Api:
    """Read-only and management calls on one store (``url`` or ``REGISTRY_URL`` or the local default)."""

    def __init__(self, url: str | None = None, *, store: Store | None = None) -> None:
        self.store = store or open_store(url)
        self.default_project = self.store.settings.project

    @property
    def url(self) -> str:
        return self.store.url

    def _project(self) -> str:
        import registry

        return registry.run.project if registry.run is not None else self.default_project

    # -- artifacts -------------------------------------------------------------------------
    def artifact(self, address: str, type: str | None = None) -> Artifact:
        """The version an address names: ``[project/]name[:alias|:vN|@sha256:<digest>]``."""
        with self.store.explain_missing():
            record = resolve(self.store.backend, parse_address(address, self._project()))
        if type is not None and record.type != type:
            raise NotFoundError(f"{record.project}/{record.name}:v{record.version} has type {record.type!r}, not {type!r}")
        return self._bind(record)

    def _bind(self, record: VersionRecord, aliases: dict[int, list[str]] | None = None) -> Artifact:
        return Artifact._from_record(self.store, record, None if aliases is None else aliases.get(record.version, []))

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
                f"project {project!r} does not exist in {self.url}{did_you_mean(project, projects)}: list projects with `registry ls`"
            )

    def artifact_names(self, project: str) -> list[str]:
        return self.store.backend.list_children(keys.artifacts_prefix(validate_name(project, "project")))

    def artifacts(self, project: str, type: str | None = None) -> list[ArtifactCollection]:
        """Every artifact of a project (optionally of one type), with its latest version."""
        def collection(name: str) -> ArtifactCollection | None:
            numbers = version_numbers(self.store.backend, project, name)
            if not numbers:
                return None
            aliases = aliases_of(self.store.backend, project, name)
            latest_number = next((v for v, a in aliases.items() if "latest" in a), numbers[-1])
            latest = self._bind(read_version(self.store.backend, project, name, latest_number), aliases)
            return ArtifactCollection(project, name, latest.type, len(numbers), latest, aliases)

        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            found = list(pool.map(collection, self.artifact_names(project)))
        return [c for c in found if c is not None and (type is None or c.type == type)]

    def artifact_versions(self, collection: str) -> list[Artifact]:
        """All versions of ``project/name``, oldest first."""
        address = parse_address(collection, self._project(), default_alias=None)
        numbers = version_numbers(self.store.backend, address.project, address.name)
        if not numbers:
            self.store.require_present()
            raise missing_artifact(self.store.backend, address.project, address.name)
        aliases = aliases_of(self.store.backend, address.project, address.name)
        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            records = list(pool.map(lambda n: read_version(self.store.backend, address.project, address.name, n), numbers))
        return [self._bind(r, aliases) for r in records]

    def set_alias(self, address: str, alias: str, expected_version: int | None = None) -> bool:
        """Point ``alias`` at the version ``address`` names (e.g. promote to ``best``)."""
        record = resolve(self.store.backend, parse_address(address, self._project()))
        self.store.check_writable()
        return set_alias(self.store.backend, record, alias, expected_version=expected_version)

    def remove_alias(self, collection: str, alias: str) -> None:
        address = parse_address(collection, self._project(), default_alias=None)
        validate_alias(alias, settable=True)
        remove_alias(self.store.backend, address.project, address.name, alias)

    # -- runs ------------------------------------------------------------------------------
    def run(self, path: str, *, by_name: bool = True) -> ApiRun:
        """A run by ``project/run-id``, or by ``project/run-name`` (which reads every run of the project)."""
        project, _, run_id = path.rpartition("/")
        project = validate_name(project or self._project(), "project")
        key = keys.run(project, validate_name(run_id, "run id"))
        try:
            return ApiRun(self, parse(RunRecord, self.store.backend.read(key), key))
        except FileNotFoundError:
            self.store.require_present()
            for candidate in self.runs(project) if by_name and not re.fullmatch(r"[0-9a-f]{8}", run_id) else []:
                if candidate.name == run_id:
                    return candidate
            raise NotFoundError(f"run {project}/{run_id} does not exist: list runs with `registry runs {project}`") from None

    def runs(self, project: str) -> list[ApiRun]:
        """Every run of a project, newest first."""
        ids = self.store.backend.list_children(keys.runs_prefix(validate_name(project, "project")))

        def read(run_id: str) -> ApiRun | None:
            key = keys.run(project, run_id)
            try:
                return ApiRun(self, parse(RunRecord, self.store.backend.read(key), key))
            except FileNotFoundError:
                return None

        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            runs = [r for r in pool.map(read, ids) if r is not None]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def used_by(self, record: VersionRecord) -> list[ApiRun]:
        """Runs that used a version, read in parallel."""

        def read(key: str) -> ApiRun | None:
            entry = parse(UsedByEntry, self.store.backend.read(key), key)
            try:
                return self.run(f"{entry.run.project}/{entry.run.id}", by_name=False)
            except NotFoundError:
                return None

        found = [info.key for info in self.store.backend.list(keys.used_by_prefix(record.project, record.name, record.version))]
        with ThreadPoolExecutor(max_workers=self.store.settings.workers) as pool:
            return [r for r in pool.map(read, found) if r is not None]

    # -- lineage ---------------------------------------------------------------------------
    def lineage(self, address: str, direction: str = "both", depth: int | None = None) -> LineageGraph:
        """The runs and versions upstream and/or downstream of one version."""
        if direction not in ("both", "upstream", "downstream"):
            raise ValueError("direction must be 'both', 'upstream' or 'downstream'")
        start = self.artifact(address).record
        graph = LineageGraph()
        start_node = _artifact_node(start.ref())
        graph.nodes[start_node.id] = start_node
        graph.root = start_node.id
        run_cache: dict[str, RunRecord | None] = {}
        if direction in ("both", "upstream"):
            self._walk(graph, start, run_cache, upstream=True, depth=depth)
        if direction in ("both", "downstream"):
            self._walk(graph, start, run_cache, upstream=False, depth=depth)
        return graph

    def _run_record(self, ref: RunRef, cache: dict[str, RunRecord | None]) -> RunRecord | None:
        key = f"{ref.project}/{ref.id}"
        if key not in cache:
            try:
                cache[key] = self.run(key, by_name=False).record
            except NotFoundError:
                cache[key] = None
        return cache[key]

    def _walk(self, graph: LineageGraph, start: VersionRecord, cache: dict, upstream: bool, depth: int | None) -> None:
        queue = deque([(start.ref(), 0)])
        seen = {start.ref()}
        while queue:
            ref, hops = queue.popleft()
            if depth is not None and hops >= depth:
                continue
            record = read_version(self.store.backend, ref.project, ref.name, ref.version)
            if upstream:
                runs = [record.created_by] if record.created_by else []
            else:
                runs = [r.record.id and RunRef(project=r.project, id=r.id) for r in self.used_by(record)]
            for run_ref in runs:
                run = self._run_record(run_ref, cache)
                if run is None:
                    continue
                run_node = _run_node(run)
                if upstream:
                    graph.add_edge(run_node, _artifact_node(ref))
                else:
                    graph.add_edge(_artifact_node(ref), run_node)
                for nxt in (run.inputs if upstream else run.outputs):
                    if upstream:
                        graph.add_edge(_artifact_node(nxt), run_node)
                    else:
                        graph.add_edge(run_node, _artifact_node(nxt))
                    if nxt not in seen:
                        seen.add(nxt)
                        queue.append((nxt, hops + 1))

    # -- listings and files for viewers (the web UI): nothing read that a page does not show --
    def run_ids(self, project: str) -> list[str]:
        """The ids of a project's runs, from one listing (no run record is read): cheap counts."""
        return self.store.backend.list_children(keys.runs_prefix(validate_name(project, "project")))

    def version_numbers(self, collection: str) -> list[int]:
        """The version numbers of ``project/name``, oldest first, from one listing (no record is read).

        ``artifact_versions`` reads every record; a page listing 1,000 versions needs only this.

        >>> Api().version_numbers("mnist-pipeline/mnist-raw")   # doctest: +SKIP
        [0, 1, 2]
        """
        address = parse_address(collection, self._project(), default_alias=None)
        return version_numbers(self.store.backend, address.project, address.name)

    def aliases(self, collection: str) -> dict[int, list[str]]:
        """Version number -> its aliases (``latest`` first) for ``project/name``, without reading a version record.

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
        return self.store.cache.ensure(entry.sha256, entry.size, what=entry.path)


def _artifact_node(ref: ArtifactRef) -> Node:
    return Node(f"artifact:{ref.qualified_name}", "artifact", ref.type, f"{ref.type}:{ref.name}:v{ref.version}", ref.qualified_name)


def _run_node(run: RunRecord) -> Node:
    job = run.job_type or "run"
    return Node(f"run:{run.project}/{run.id}", "run", job, f"{job}:{run.name}", f"{run.project}/{run.id}")
