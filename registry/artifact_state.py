"""What may change about a logged version, on ``Artifact`` (a base class of it): W&B's
``tags``, ``ttl``, edited ``description`` and ``metadata`` and ``aliases`` (kept by
``save()``), ``delete()``, and the registry's ``link()`` / ``unlink()`` with the
``is_link`` / ``source_*`` / ``linked_artifacts`` / ``collection`` views.

The version record never changes; these live in the keys ``lifecycle``, ``links`` and
``collections`` keep (docs/FORMAT.md). The mutable state is read on first use, so resolving and
downloading never pay for it.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import active
from .alias_moves import remove, set_alias
from .collections import ArtifactCollection
from .errors import ConflictError, InvalidNameError, NotFoundError, RegistryError
from .jsonable import to_jsonable
from .lifecycle import delete_version, live_links, read_annotations, update_annotations, validate_tags
from .links import link_version, parse_link_target, unlink_version
from .records import Annotations, VersionRecord
from .versions import is_deleted, read_version

if TYPE_CHECKING:
    from .artifact import Artifact
    from .store import Store


class VersionState:
    """Mixed into ``Artifact``; relies on its ``_logged()``, ``from_record`` and ``attach``."""

    _record: VersionRecord | None = None
    _store: Store | None = None
    _description: str | None = None
    _metadata: dict[str, Any]
    _annotations: Annotations | None = None
    _wanted_tags: list[str] | None = None
    _wanted_ttl: timedelta | bool | None = False  # False: not set by the user

    def _logged(self) -> tuple[Store, VersionRecord]:
        raise NotImplementedError

    def is_draft(self) -> bool:
        """True until the artifact is logged (W&B's name)."""
        return self._record is None

    def reset_state(self, record: VersionRecord | None) -> None:
        """Forget what was read or wanted (a new handle, or one that just became ``record``'s)."""
        if record is not None:
            self._description, self._metadata = record.description, dict(record.metadata)
        self._annotations, self._wanted_tags = None, None

    def _state(self) -> Annotations | None:
        """The version's annotations, read once; None for a draft."""
        if self._record is None or self._store is None:
            return None
        if self._annotations is None:
            self._annotations = read_annotations(self._store.backend, self._record)
            state = self._annotations
            self._description, self._metadata = state.description, dict(state.metadata)
        return self._annotations

    # -- description and metadata (editable after logging, as in W&B) -----------------------------
    @property
    def description(self) -> str | None:
        self._state()
        return self._description

    @description.setter
    def description(self, description: str | None) -> None:
        self._state()
        self._description = description

    @property
    def metadata(self) -> dict[str, Any]:
        self._state()
        return self._metadata

    @metadata.setter
    def metadata(self, metadata: dict[str, Any]) -> None:
        self._state()
        self._metadata = to_jsonable(dict(metadata or {}), "metadata")

    # -- tags, TTL, aliases: saved by save() --------------------------------------------------------
    @property
    def tags(self) -> list[str]:
        if self._wanted_tags is not None:
            return list(self._wanted_tags)
        state = self._state()
        return list(state.tags) if state is not None else []

    @tags.setter
    def tags(self, tags: Iterable[str] | str) -> None:
        self._wanted_tags = validate_tags(tags)

    @property
    def ttl(self) -> timedelta | None:
        """How long after its creation the version is kept (``registry retention apply`` and
        ``gc`` delete it after that); None: no limit."""
        if self._wanted_ttl is not False:
            return self._wanted_ttl  # type: ignore[return-value]
        state = self._state()
        return timedelta(seconds=state.ttl_seconds) if state and state.ttl_seconds else None

    @ttl.setter
    def ttl(self, ttl: timedelta | None) -> None:
        if self._record is not None and self._record.source is not None:
            raise InvalidNameError("a link has no TTL of its own: unlink it, or set the TTL of its source")
        if ttl is not None and (not isinstance(ttl, timedelta) or ttl.total_seconds() < 1):
            raise InvalidNameError(f"invalid ttl {ttl!r}: give a positive datetime.timedelta, or None")
        self._wanted_ttl = ttl

    def save(self, project: str | None = None, settings: object = None) -> None:
        """Store what changed: description, metadata, tags, TTL, aliases (each change in the audit
        log). A new artifact is logged by the active run, or else by a run of job type ``auto``
        in ``project`` (default: REGISTRY_PROJECT), as in W&B."""
        if self._record is None:
            self._log_draft(project)
            return
        store, record = self._logged()
        changes = self._annotation_changes()
        if changes:
            saved = self._annotations = update_annotations(store, record, **changes)
            self._description, self._metadata = saved.description, dict(saved.metadata)
        self._wanted_tags, self._wanted_ttl = None, False
        self._save_aliases(store, record)

    def _log_draft(self, project: str | None) -> None:
        if active.run is not None:
            active.run.log_artifact(self)  # type: ignore[arg-type]  # self is an Artifact
            return
        if active.start_auto_run is None:
            raise RegistryError("artifact.save() of a new artifact needs a run: call registry.init()")
        with active.start_auto_run(project) as run:
            run.log_artifact(self)  # type: ignore[arg-type]

    def _annotation_changes(self) -> dict[str, Any]:
        """Only what this handle changed since it read the version: other writers' edits stand."""
        read = self._state()
        changes: dict[str, Any] = {}
        if read is not None and self._description != read.description:
            changes["description"] = self._description
        if read is not None and self._metadata != read.metadata:
            changes["metadata"] = to_jsonable(self._metadata, "metadata")
        if self._wanted_tags is not None:
            changes["tags"] = self._wanted_tags
        if self._wanted_ttl is not False:
            ttl = self._wanted_ttl
            changes["ttl_seconds"] = int(ttl.total_seconds()) if isinstance(ttl, timedelta) else None
        return changes

    def _save_aliases(self, store: Store, record: VersionRecord) -> None:
        added, removed = self.alias_changes()
        for alias in added:
            set_alias(store, record, alias)
        for alias in removed:
            try:
                remove(store, record.project, record.name, alias, expected_version=record.version)
            except (ConflictError, NotFoundError):
                continue  # moved elsewhere (or removed) since it was read: that stands
        if added or removed:
            self.reset_aliases()

    def alias_changes(self) -> tuple[list[str], list[str]]:
        """Overridden by ``Artifact``: the user aliases added and removed since they were read."""
        return [], []

    def reset_aliases(self) -> None:
        """Overridden by ``Artifact``: forget the aliases it read."""

    # -- delete, link, unlink -------------------------------------------------------------------
    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version (a link: unlink it). Refused while user aliases point at it unless
        ``delete_aliases``, and while the registry links it; its blobs go at a later ``gc``."""
        store, record = self._logged()
        if record.source is not None:
            unlink_version(store, record)
        else:
            delete_version(store, record, delete_aliases=delete_aliases)

    def unlink(self) -> None:
        """Remove this link from its collection (the source version stays)."""
        store, record = self._logged()
        unlink_version(store, record)

    def link(self, target_path: str, aliases: Iterable[str] | None = None) -> Artifact:
        """Link this version into a collection, e.g. ``registry/mnist`` (no copy); returns the link."""
        store, record = self._logged()
        target = parse_link_target(target_path, store.settings.project)
        run = active.run.ref if active.run is not None else None
        result = link_version(store, record, target, list(aliases or []), run=run)
        return self._open(result.record)

    def _open(self, record: VersionRecord) -> Artifact:
        store, _ = self._logged()
        return type(self).from_record(store, record)  # type: ignore[attr-defined]

    @property
    def state(self) -> str:
        """W&B's ``PENDING`` (a draft), ``COMMITTED`` or ``DELETED``."""
        if self._record is None or self._store is None:
            return "PENDING"
        record = self._record
        return "DELETED" if is_deleted(self._store.backend, record.project, record.name, record.version) \
            else "COMMITTED"

    @property
    def updated_at(self) -> datetime:
        """When the version or its tags, TTL, description or metadata last changed."""
        state = self._state()
        created = self._logged()[1].created_at
        return max(created, state.updated_at) if state is not None else created

    # -- what a link is -----------------------------------------------------------------------------
    @property
    def is_link(self) -> bool:
        return self._logged()[1].source is not None

    def _source_record(self) -> VersionRecord:
        store, record = self._logged()
        if record.source is None:
            return record
        return read_version(store.backend, record.source.project, record.source.name, record.source.version)

    @property
    def source_project(self) -> str:
        return self._source_record().project

    @property
    def source_name(self) -> str:
        """``name:vN`` of the version this one's contents come from (itself unless a link)."""
        source = self._source_record()
        return f"{source.name}:v{source.version}"

    @property
    def source_version(self) -> str:
        return f"v{self._source_record().version}"

    @property
    def source_qualified_name(self) -> str:
        return f"{self.source_project}/{self.source_name}"

    @property
    def source_artifact(self) -> Artifact:
        return self._open(self._source_record())

    @property
    def linked_artifacts(self) -> list[Artifact]:
        """The links to this version that stand (none for a link itself)."""
        store, record = self._logged()
        return [] if record.source is not None else [self._open(r) for r in live_links(store.backend, record)]

    @property
    def collection(self) -> ArtifactCollection:
        store, record = self._logged()
        return ArtifactCollection(store, record.project, record.name, self._open)

    @property
    def source_collection(self) -> ArtifactCollection:
        store, _ = self._logged()
        source = self._source_record()
        return ArtifactCollection(store, source.project, source.name, self._open)
