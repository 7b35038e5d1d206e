"""What a copy (or an export) takes: whole projects, and artifacts up to a version with what
they need -- the runs that logged them, upstream the versions those runs used and, for a
registry link, the version it links. Read only from the source.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import keys
from .errors import NotFoundError
from .mirror_lifecycle import deleted_at
from .names import parse_address, validate_name
from .records import RunRecord, parse
from .store import Store
from .versions import latest_number, read_version, resolve, version_numbers

ArtifactKey = tuple[str, str]


@dataclass
class Selection:
    """What to copy: versions ``0..upto`` of each artifact (``None``: all), and which runs."""

    artifacts: dict[ArtifactKey, int | None] = field(default_factory=dict)
    run_projects: list[str] = field(default_factory=list)
    """Projects whose every run is copied (a whole-project copy)."""
    runs: set[tuple[str, str]] = field(default_factory=set)
    """Single runs: those that logged the selected versions."""
    link_collections: set[ArtifactKey] = field(default_factory=set)
    """Artifacts holding links: copied after the versions they link."""


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
    for (project, name) in list(selection.artifacts):
        todo.extend(_linked_sources(source, project, name, None, -1, selection))
    while todo:
        project, name, number = todo.pop()
        known = selection.artifacts.get((project, name), -1)
        if known is None or known >= number or project in selection.run_projects:
            continue
        selection.artifacts[(project, name)] = number
        todo.extend(_linked_sources(source, project, name, number, known, selection))
        for older in range(known + 1, number + 1):
            todo.extend(_upstream(source, project, name, older, selection))
    return selection


def _linked_sources(source: Store, project: str, name: str, upto: int | None, known: int,
                    selection: Selection) -> list[tuple[str, str, int]]:
    """The versions that the links among ``v<known+1>..v<upto>`` link (a collection holds links
    only, so its newest version tells whether to read the others)."""
    top = latest_number(source.backend, project, name) if upto is None else upto
    if top is None or read_version(source.backend, project, name, top).source is None:
        return []
    selection.link_collections.add((project, name))
    gone = deleted_at(source, project, name)
    found = []
    for number in numbers_upto(source, project, name, top):
        record = read_version(source.backend, project, name, number)
        if number > known and number not in gone and record.source is not None:
            found.append((record.source.project, record.source.name, record.source.version))
    return found


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


def numbers_upto(store: Store, project: str, name: str, upto: int | None) -> list[int]:
    return [n for n in version_numbers(store.backend, project, name) if upto is None or n <= upto]
