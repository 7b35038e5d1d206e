"""``ApiRun``: a run as read back from the store (W&B's ``wandb.apis.public.Run``).

Its artifacts are opened through a function the caller passes in (``Api`` or an
``Artifact``), so this module sits below both and imports neither.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .errors import NotFoundError
from .names import validate_digest
from .records import ArtifactRef, FileEntry, RunRecord
from .run_records import read_history

if TYPE_CHECKING:
    from .artifact import Artifact
    from .store import Store

OpenArtifact = Callable[[ArtifactRef], "Artifact"]


class ApiRun:
    """A run as read back from the store."""

    def __init__(self, store: Store, record: RunRecord, open_artifact: OpenArtifact) -> None:
        self.store = store
        self.record = record
        self.open_artifact = open_artifact
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
        return [self.open_artifact(ref) for ref in self.record.inputs]

    def logged_artifacts(self) -> list[Artifact]:
        return [self.open_artifact(ref) for ref in self.record.outputs]

    def history(self) -> list[dict[str, Any]]:
        """Every logged row, in order (images appear as ``{"_type": "image", "sha256": ...}``)."""
        return read_history(self.store.backend, self.record)

    def files(self) -> list[FileEntry]:
        return list(self.record.files)

    @cached_property
    def image_shas(self) -> frozenset[str]:
        """The sha256 of every image the history references (``registry.Image`` values); read once."""
        found: set[str] = set()
        for row in self.history():
            for value in row.values():
                items = value if isinstance(value, list) else [value]
                images = (i for i in items if isinstance(i, dict) and i.get("_type") == "image")
                found.update(i["sha256"] for i in images if isinstance(i.get("sha256"), str))
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
            raise NotFoundError(
                f"run {self.path} logged no image with sha256 {digest}: its images are in run.history()"
            )
        return self.store.blobs.read(digest, what="image")

    def __repr__(self) -> str:
        return f"<ApiRun {self.path} ({self.name}, {self.job_type}, {self.state})>"
