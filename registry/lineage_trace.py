"""Tracing lineage through the store: from one version, breadth-first over the runs that made
or used each version, into a ``LineageGraph``. Reads only; each run record is read once."""
from __future__ import annotations

from collections import deque

from backends import Backend

from .errors import NotFoundError
from .lifecycle import live_links
from .lineage import Direction, LineageGraph, Node
from .records import ArtifactRef, RunRecord, RunRef, VersionRecord
from .run_records import read_run, users_of
from .versions import read_version


def trace(backend: Backend, start: VersionRecord, direction: Direction = "both", depth: int | None = None,
          workers: int = 16) -> LineageGraph:
    """The runs and versions upstream and/or downstream of ``start``, at most ``depth`` runs away."""
    if direction not in ("both", "upstream", "downstream"):
        raise ValueError("direction must be 'both', 'upstream' or 'downstream'")
    graph = LineageGraph()
    start_node = artifact_node(start.ref())
    graph.nodes[start_node.id] = start_node
    graph.root = start_node.id
    runs = _RunReader(backend, workers)
    if direction in ("both", "upstream"):
        _walk(graph, backend, runs, start, upstream=True, depth=depth)
    if direction in ("both", "downstream"):
        _walk(graph, backend, runs, start, upstream=False, depth=depth)
    return graph


class _RunReader:
    """Run records by reference, each read at most once per trace (missing ones as None)."""

    def __init__(self, backend: Backend, workers: int) -> None:
        self.backend, self.workers = backend, workers
        self.seen: dict[RunRef, RunRecord | None] = {}

    def get(self, ref: RunRef) -> RunRecord | None:
        if ref not in self.seen:
            try:
                self.seen[ref] = read_run(self.backend, ref.project, ref.id)
            except NotFoundError:
                self.seen[ref] = None
        return self.seen[ref]

    def made(self, version: VersionRecord) -> list[RunRecord]:
        found = self.get(version.created_by) if version.created_by else None
        return [found] if found is not None else []

    def used(self, version: VersionRecord) -> list[RunRecord]:
        records = users_of(self.backend, version, self.workers)
        for record in records:
            self.seen[RunRef(project=record.project, id=record.id)] = record
        return records


def _walk(graph: LineageGraph, backend: Backend, runs: _RunReader, start: VersionRecord, upstream: bool,
          depth: int | None) -> None:
    queue = deque([(start.ref(), 0)])
    seen = {start.ref()}
    while queue:
        ref, hops = queue.popleft()
        if depth is not None and hops >= depth:
            continue
        record = read_version(backend, ref.project, ref.name, ref.version)
        for nxt in _linked(backend, record, upstream):  # a registry link: source --links--> link
            if upstream:
                graph.add_edge(artifact_node(nxt), artifact_node(ref))
            else:
                graph.add_edge(artifact_node(ref), artifact_node(nxt))
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, hops))  # the same contents: no run further away
        # a link's contents were made by its source's run, not by the run that linked it
        made_or_used = (runs.made(record) if record.source is None else []) if upstream else runs.used(record)
        for run in made_or_used:
            run_node, here = run_node_of(run), artifact_node(ref)
            # Upstream, the run produced this version and consumed its inputs; downstream, it
            # consumed this version and produced its outputs.
            if upstream:
                graph.add_edge(run_node, here)
            else:
                graph.add_edge(here, run_node)
            for nxt in run.inputs if upstream else run.outputs:
                if upstream:
                    graph.add_edge(artifact_node(nxt), run_node)
                else:
                    graph.add_edge(run_node, artifact_node(nxt))
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, hops + 1))


def _linked(backend: Backend, record: VersionRecord, upstream: bool) -> list[ArtifactRef]:
    """Upstream, the version a link links; downstream, the links to a version that stand."""
    if upstream:
        return [record.source] if record.source is not None else []
    return [link.ref() for link in live_links(backend, record)]


def artifact_node(ref: ArtifactRef) -> Node:
    return Node(f"artifact:{ref.qualified_name}", "artifact", ref.type,
                f"{ref.type}:{ref.name}:v{ref.version}", ref.qualified_name)


def run_node_of(run: RunRecord) -> Node:
    job = run.job_type or "run"
    return Node(f"run:{run.project}/{run.id}", "run", job, f"{job}:{run.name}", f"{run.project}/{run.id}")
