"""``ArtifactCollection``: W&B's handle on one named artifact or registry collection -- its type,
description, tags, aliases and versions (``Api().artifact_collection(type, name)``,
``artifact.collection``).

Versions are opened through a function the caller passes in, so this module sits below
``Artifact`` and imports it nowhere.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from . import audit_log, keys
from .errors import ConflictError, NotFoundError
from .lifecycle import delete_version, deleted_numbers, live_links, require_online, validate_tags
from .mutable import read_doc, update_doc
from .names import REGISTRY_PROJECT
from .records import CollectionInfo, VersionRecord, now
from .store import Store
from .versions import aliases_of, latest_number, missing_artifact, read_version, version_numbers

if TYPE_CHECKING:
    from .artifact import Artifact

OpenVersion = Callable[[VersionRecord], "Artifact"]


class ArtifactCollection:
    """One artifact's versions (a *sequence*) or a registry collection of links.

    >>> models = Api().artifact_collection("model", "registry/mnist")   # doctest: +SKIP
    >>> models.aliases, [v.version for v in models.versions()]           # doctest: +SKIP
    (['latest', 'production'], ['v0', 'v1'])
    >>> models.description = "MNIST classifiers"; models.save()         # doctest: +SKIP
    """

    def __init__(self, store: Store, project: str, name: str, open_version: OpenVersion) -> None:
        self.store, self.project, self.name = store, project, name
        self.entity: str | None = None  # W&B's entity: a store has none
        self.open_version = open_version
        top = latest_number(store.backend, project, name)
        if top is None:
            raise missing_artifact(store.backend, project, name)
        self._newest = read_version(store.backend, project, name, top)
        found = read_doc(store.backend, keys.collection_info(project, name), CollectionInfo)
        info = found[0] if found else CollectionInfo(updated_at=self._newest.created_at)
        self._info = info
        self.description: str | None = info.description
        self._tags = list(info.tags)

    @property
    def type(self) -> str:
        return self._newest.type

    @property
    def tags(self) -> list[str]:
        return list(self._tags)

    @tags.setter
    def tags(self, tags: Iterable[str] | str) -> None:
        self._tags = validate_tags(tags)

    @property
    def aliases(self) -> list[str]:
        """Every alias in the collection (``latest`` first), as W&B lists them."""
        by_version = aliases_of(self.store.backend, self.project, self.name)
        names = {a for listed in by_version.values() for a in listed}
        return sorted(names, key=lambda a: (a != "latest", a))

    @property
    def updated_at(self) -> datetime:
        return max(self._newest.created_at, self._info.updated_at)

    @property
    def created_at(self) -> datetime:
        return self.open_version(self._first()).created_at

    def _first(self) -> VersionRecord:
        numbers = version_numbers(self.store.backend, self.project, self.name)
        return read_version(self.store.backend, self.project, self.name, numbers[0])

    def is_sequence(self) -> bool:
        """True for an artifact's own versions; False for a collection of links (the registry)."""
        return self._newest.source is None and self.project != REGISTRY_PROJECT

    def versions(self) -> list[Artifact]:
        """The versions not deleted, oldest first."""
        gone = deleted_numbers(self.store.backend, self.project, self.name)
        numbers = [n for n in version_numbers(self.store.backend, self.project, self.name) if n not in gone]
        if not numbers:
            raise NotFoundError(f"{self.project}/{self.name} has no versions left (all were deleted)")
        backend = self.store.backend
        return [self.open_version(read_version(backend, self.project, self.name, n)) for n in numbers]

    artifacts = versions  # W&B's other name for it

    def save(self) -> None:
        """Store the description and tags (compare-and-swap), with an audit entry per change."""
        require_online(self.store, "editing a collection")
        self.store.check_writable()
        wanted = {"description": self.description, "tags": list(self._tags)}

        def change(current: CollectionInfo | None) -> CollectionInfo:
            base = current or CollectionInfo(updated_at=now())
            if all(getattr(base, k) == v for k, v in wanted.items()):
                return base
            return base.model_copy(update={**wanted, "updated_at": now()})

        before, after = update_doc(self.store.backend, keys.collection_info(self.project, self.name),
                                   CollectionInfo, change)
        old = before or CollectionInfo(updated_at=after.updated_at)
        subject = f"{self.project}/{self.name}"
        if old.description != after.description:
            audit_log.record(self.store, [(self.project, self.name)], "collection.description.set", subject,
                             before=old.description, after=after.description)
        if old.tags != after.tags:
            audit_log.record(self.store, [(self.project, self.name)], "collection.tags.set", subject,
                             before=", ".join(old.tags) or None, after=", ".join(after.tags) or None)
        self._info = after

    def delete(self) -> None:
        """Delete every version (a collection of links: unlink each), with their aliases.

        Refused, before anything is deleted, while the registry links one of its versions.
        """
        versions = [v.record for v in self.versions()]
        linked = [r for r in versions if r.source is None and live_links(self.store.backend, r)]
        if linked:
            raise ConflictError(
                f"{self.project}/{self.name}:v{linked[0].version} is linked into the registry: "
                "unlink that first"
            )
        for record in reversed(versions):
            delete_version(self.store, record, delete_aliases=True,
                           reason="unlink" if record.source is not None else "delete")

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.project}/{self.name} ({self.type})>"
