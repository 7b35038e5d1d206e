"""registry: W&B-style artifacts (versioned datasets and models, aliases, lineage) on storage you own.

>>> import registry as wandb                                         # doctest: +SKIP
>>> with wandb.init(project="demo", job_type="load-data") as run:   # doctest: +SKIP
...     art = wandb.Artifact("mnist-raw", type="dataset")
...     art.add_file("train.pt")
...     run.log_artifact(art)
"""
from __future__ import annotations

from typing import Any

from . import active
from .api import Api, ApiRun
from .artifact import Artifact, ArtifactFile
from .errors import (
    ConflictError,
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    PermissionDenied,
    RegistryError,
    StorageError,
)
from .media import Image
from .run_config import Config, Summary
from .runs import Run, finish, init, log, save

__version__ = "0.1.0"


_MOVING = {"sync": "outbox_sync", "copy_store": "mirror",
           "export_bundle": "bundle", "import_bundle": "bundle"}
"""Moving work between stores: imported on first use, so that every other call starts faster."""


def __getattr__(name: str) -> Any:
    """``registry.run``, ``registry.config``, ``registry.summary``: the active run's, as in W&B;
    ``sync``, ``copy_store``, ``export_bundle``, ``import_bundle`` from their modules."""
    if name in ("run", "config", "summary"):
        return getattr(active, name)
    if name in _MOVING:
        import importlib

        return getattr(importlib.import_module(f".{_MOVING[name]}", __name__), name)
    raise AttributeError(f"module 'registry' has no attribute {name!r}")

__all__ = [
    "Api",
    "ApiRun",
    "Artifact",
    "ArtifactFile",
    "Config",
    "ConflictError",
    "Image",
    "IntegrityError",
    "InvalidNameError",
    "NotFoundError",
    "PermissionDenied",
    "RegistryError",
    "Run",
    "StorageError",
    "Summary",
    "config",
    "copy_store",
    "export_bundle",
    "finish",
    "import_bundle",
    "init",
    "log",
    "run",
    "save",
    "summary",
    "sync",
]
