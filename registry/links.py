"""Linking versions into collections: the model registry (``registry/<collection>``).

A link is a version of its own in the collection -- dense number, ``latest``, aliases moved
by compare-and-swap, all by the commit protocol of ``versions`` -- whose record has the
source version's digest (so the same file list and blobs: nothing is copied) and names the
source in ``source``. Before the link record is written, the source gets a link index entry
(``linked-to/``), so a source knows its links and cannot be deleted while one stands.
Unlinking deletes the link version (``lifecycle.delete_version``), never the source.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import audit_log, keys
from .errors import InvalidNameError, NotFoundError
from .lifecycle import delete_version, require_online
from .names import REGISTRY_PROJECT, canonical_project, is_registry_project, validate_name
from .records import LinkIndexEntry, RunRef, VersionRecord, now
from .store import Store
from .versions import (
    CommitResult,
    commit_version,
    is_deleted,
    latest_number,
    move_alias,
    read_version,
    versions_with_digest,
)


@dataclass(frozen=True)
class LinkTarget:
    project: str
    collection: str

    def __str__(self) -> str:
        return f"{self.project}/{self.collection}"


def parse_link_target(target_path: str, default_project: str) -> LinkTarget:
    """W&B's target path forms: ``registry/<c>``, ``wandb-registry-<r>/<c>``,
    ``<org>/wandb-registry-<r>/<c>``, ``[<entity>/]model-registry/<c>`` (all the registry),
    ``<project>/<c>`` and ``<c>`` (a collection of links in a project).

    >>> parse_link_target("my-org/wandb-registry-model/mnist", "demo")
    LinkTarget(project='registry', collection='mnist')
    """
    if not isinstance(target_path, str) or ":" in target_path or "@" in target_path:
        raise InvalidNameError(
            f"invalid link target {target_path!r}: use registry/<collection> (no alias or version: "
            "give aliases=[...])"
        )
    parts = target_path.split("/")
    if len(parts) == 3:
        parts = parts[1:]  # an entity or organisation: a store has one
    if len(parts) > 2:
        raise InvalidNameError(f"invalid link target {target_path!r}: use registry/<collection>")
    project = parts[0] if len(parts) == 2 else default_project
    return LinkTarget(canonical_project(validate_name(project, "project")),
                      validate_name(parts[-1], "collection name"))


def link_version(store: Store, source: VersionRecord, target: LinkTarget, aliases: list[str],
                 run: RunRef | None = None) -> CommitResult:
    """Link ``source`` into ``target`` (again: the existing link gets the aliases) and move its aliases.

    Linking a link links its source, as in W&B.
    """
    require_online(store, "linking into the registry")
    backend = store.backend
    if source.source is not None:
        source = read_version(backend, source.source.project, source.source.name, source.source.version)
    if is_deleted(backend, source.project, source.name, source.version):
        raise NotFoundError(
            f"{source.project}/{source.name}:v{source.version} was deleted: it cannot be linked"
        )
    _check_collection(store, source, target)
    store.check_writable()
    existing = _existing_link(store, source, target)
    if existing is not None:
        moved = {a: m.previous for a in aliases if (m := move_alias(backend, existing, a)).changed}
        result = CommitResult(existing, created=False, moved=moved)
    else:
        entry = LinkIndexEntry(project=target.project, collection=target.collection, linked_at=now())
        backend.write(keys.link_index(source.project, source.name, source.version, target.project,
                                      target.collection), entry.to_bytes())
        draft = VersionRecord(
            project=target.project, name=target.collection, version=0, type=source.type,
            description=source.description, metadata=source.metadata, digest=source.digest, size=source.size,
            file_count=source.file_count, created_at=now(), created_by=run, commit_id="", source=source.ref(),
            schema=source.schema_version, packs=source.packs,  # the source's contents, in its format
        )
        result = commit_version(backend, draft, aliases, dedupe=False)
    _audit_link(store, source, result)
    return result


def _check_collection(store: Store, source: VersionRecord, target: LinkTarget) -> None:
    """A collection holds links only, of one type."""
    top = latest_number(store.backend, target.project, target.collection)
    if top is None:
        return
    newest = read_version(store.backend, target.project, target.collection, top)
    if newest.source is None:
        raise InvalidNameError(
            f"{target} holds logged versions, not links: link into a collection of its own "
            f"(e.g. {REGISTRY_PROJECT}/{target.collection})"
        )
    if newest.type != source.type:
        raise InvalidNameError(f"{target} holds {newest.type!r} versions, not {source.type!r}")


def _existing_link(store: Store, source: VersionRecord, target: LinkTarget) -> VersionRecord | None:
    backend = store.backend
    for number in reversed(versions_with_digest(backend, target.project, target.collection, source.digest)):
        record = read_version(backend, target.project, target.collection, number)
        gone = is_deleted(backend, target.project, target.collection, number)
        if record.source == source.ref() and not gone:
            return record
    return None


def _audit_link(store: Store, source: VersionRecord, result: CommitResult) -> None:
    link = result.record
    address = f"{link.project}/{link.name}:v{link.version}"
    logs = [(link.project, link.name), (source.project, source.name)]
    if result.created:
        audit_log.record(store, logs, "link", address, before=source.ref().qualified_name, after=address)
    for alias, previous in result.moved.items():
        audit_log.record(store, logs, "alias.set", address, alias=alias,
                         before=None if previous is None else f"v{previous}", after=f"v{link.version}")


def unlink_version(store: Store, link: VersionRecord) -> None:
    """Remove a link (and the aliases on it) from its collection; the source stays as it was."""
    if link.source is None:
        raise InvalidNameError(
            f"{link.project}/{link.name}:v{link.version} is not a link: delete it with artifact.delete()"
        )
    delete_version(store, link, delete_aliases=True, reason="unlink")


def refuse_logging_into_registry(project: str) -> None:
    """The registry holds links only: versions are logged in a project, then linked."""
    if is_registry_project(project):
        raise InvalidNameError(
            f"project {project!r} is the registry, which holds links only: log the artifact in a project, "
            "then run.link_artifact(artifact, 'registry/<collection>')"
        )
