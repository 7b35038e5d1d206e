"""registry: W&B-style artifacts (versioned datasets and models, aliases, lineage) on storage you own.

>>> import registry as wandb                                         # doctest: +SKIP
>>> with wandb.init(project="demo", job_type="load-data") as run:   # doctest: +SKIP
...     art = wandb.Artifact("mnist-raw", type="dataset")
...     art.add_file("train.pt")
...     run.log_artifact(art)
"""
from __future__ import annotations

import atexit
import gc
from typing import TYPE_CHECKING, Any

from . import active
from .errors import (
    ConflictError,
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    PermissionDenied,
    RegistryError,
    StorageError,
)

if TYPE_CHECKING:  # imported on first use (``__getattr__``), below
    from .api import Api, ApiRun
    from .artifact import Artifact, ArtifactFile
    from .media import Image
    from .run_config import Config, Summary
    from .runs import Run, finish, init, log, save

__version__ = "0.1.0"

atexit.register(gc.freeze)
"""The interpreter's last garbage collection walks every object left (pydantic's schemas, the
modules' own): ~50 ms of every CLI call and short script here. Frozen at exit, they are skipped;
the process ends anyway, and the files it opened are closed by the kernel."""


_LAZY = {"Api": "api", "ApiRun": "api", "Artifact": "artifact", "ArtifactFile": "artifact", "Image": "media",
         "Config": "run_config", "Summary": "run_config", "Run": "runs", "finish": "runs", "init": "runs",
         "log": "runs", "save": "runs",
         "sync": "outbox_sync", "copy_store": "mirror", "export_bundle": "bundle", "import_bundle": "bundle"}
"""Imported on first use, each from its module: reading a store (``Api``: a pull, the CLI's
reads) does not import the writing side (runs, drafts, publishing), and moving work between
stores is imported only by those calls."""
_WITH_RUNS = {"Artifact", "ArtifactFile"}
"""Names whose use may log through a run (``Artifact(...).save()`` starts one): ``runs`` comes
with them, as it sets ``active.start_auto_run``."""


def __getattr__(name: str) -> Any:
    """``registry.run``, ``registry.config``, ``registry.summary``: the active run's, as in W&B;
    everything else in ``_LAZY`` from its module, and submodules, on first use."""
    if name in ("run", "config", "summary"):
        return getattr(active, name)
    if name in _LAZY:
        import importlib

        if name in _WITH_RUNS:
            importlib.import_module(".runs", __name__)
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # the next look-up finds it without this call
        return value
    if not name.startswith("_"):  # a submodule (``registry.hashing``), as when the package loaded most
        import importlib.util

        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)
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
