"""registry: W&B-style artifacts (versioned datasets and models, aliases, lineage) on storage you own.

>>> import registry as wandb                                         # doctest: +SKIP
>>> with wandb.init(project="demo", job_type="load-data") as run:   # doctest: +SKIP
...     art = wandb.Artifact("mnist-raw", type="dataset")
...     art.add_file("train.pt")
...     run.log_artifact(art)
"""
from __future__ import annotations

from .api import Api, ApiRun
from .artifact import Artifact, ArtifactFile
from .errors import ConflictError, IntegrityError, InvalidNameError, NotFoundError, RegistryError, StorageError
from .media import Image
from .run import Config, Run, Summary, finish, init, log, save

__version__ = "0.1.0"

run: Run | None = None
"""The active run, set by ``init`` and cleared by ``finish``."""
config: Config = Config()
summary: Summary = Summary()

__all__ = [
    "Api", "ApiRun", "Artifact", "ArtifactFile", "Config", "Image", "Run", "Summary",
    "init", "log", "save", "finish", "run", "config", "summary",
    "RegistryError", "NotFoundError", "InvalidNameError", "ConflictError", "IntegrityError", "StorageError",
]
