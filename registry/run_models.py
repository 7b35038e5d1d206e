"""W&B's model-registry calls on a run: ``link_artifact``, ``log_model``, ``use_model``,
``link_model`` (a base class of ``Run``, built on its ``log_artifact`` and ``use_artifact``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .artifact import Artifact
from .errors import InvalidNameError
from .links import link_version, parse_link_target
from .names import REGISTRY_PROJECT
from .records import RunRef

if TYPE_CHECKING:
    from .store import Store


def default_name(run_id: str, path: str | os.PathLike) -> str:
    """W&B's name for an artifact logged from a path: ``run-<run id>-<basename>``."""
    return f"run-{run_id}-{Path(path).name}"


def artifact_from_path(path: str | os.PathLike, name: str, type: str | None) -> Artifact:
    """A draft holding a file (under its name) or a directory's files."""
    source = Path(path)
    if not source.exists():
        raise InvalidNameError(f"cannot log {source}: no such file or directory")
    artifact = Artifact(name, type=type or "unspecified")
    if source.is_dir():
        artifact.add_dir(source)
    else:
        artifact.add_file(source)
    return artifact


class ModelCalls:
    """Mixed into ``Run``; relies on its ``store``, ``project``, ``id``, ``ref``, ``log_artifact``
    and ``use_artifact``."""

    store: Store
    project: str
    id: str

    @property
    def ref(self) -> RunRef:
        raise NotImplementedError

    def log_artifact(self, artifact_or_path: Artifact | str | os.PathLike, name: str | None = None,
                     type: str | None = None, aliases: list[str] | None = None, tags: list[str] | None = None,
                     progress=None) -> Artifact:
        raise NotImplementedError

    def use_artifact(self, artifact_or_address: Artifact | str, type: str | None = None) -> Artifact:
        raise NotImplementedError

    def link_artifact(self, artifact: Artifact, target_path: str,
                      aliases: list[str] | None = None) -> Artifact:
        """Link a version into a collection -- ``registry/<collection>`` or any of W&B's target
        forms -- without copying anything; a draft is logged first. Returns the link.

        >>> run.link_artifact(model, "registry/mnist", aliases=["staging"])   # doctest: +SKIP
        <Artifact registry/mnist:v0 model>
        """
        if artifact.is_draft():
            artifact = self.log_artifact(artifact)
        target = parse_link_target(target_path, self.project)
        result = link_version(self.store, artifact.record, target, list(aliases or []), run=self.ref)
        return Artifact.from_record(self.store, result.record)

    def log_model(self, path: str | os.PathLike, name: str | None = None,
                  aliases: list[str] | None = None) -> Artifact:
        """Log a file or directory as a ``model`` artifact (default name ``run-<run id>-<basename>``).

        W&B returns None; the logged version is returned here.
        """
        model = artifact_from_path(path, name or default_name(self.id, path), "model")
        return self.log_artifact(model, aliases=aliases)

    def use_model(self, name: str) -> str:
        """Use a model version (``name:alias``, ``registry/<collection>:production``...) and
        download it; returns the file's path when it holds one file, else the directory."""
        model = self.use_artifact(name)
        if "model" not in model.type.lower():
            raise InvalidNameError(f"{model.qualified_name} has type {model.type!r}: use_model takes models")
        root = model.download()
        entries = os.listdir(root)
        return os.path.join(root, entries[0]) if len(entries) == 1 else root

    def link_model(self, path: str | os.PathLike, registered_model_name: str, name: str | None = None,
                   aliases: list[str] | None = None) -> Artifact:
        """Log ``path`` as a model (or find it unchanged), link it to ``registry/<registered_model_name>``."""
        if "/" in registered_model_name:
            raise InvalidNameError(
                f"registered model name {registered_model_name!r} is a path: give only the name"
            )
        model = self.log_model(path, name=name)
        return self.link_artifact(model, f"{REGISTRY_PROJECT}/{registered_model_name}", aliases=aliases)
