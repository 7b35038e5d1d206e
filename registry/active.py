"""The active run: what W&B keeps as ``wandb.run``, ``wandb.config`` and ``wandb.summary``.

Set by ``registry.init`` and cleared by ``finish``; the package reads it back through its
module ``__getattr__``, so no module has to import the package it belongs to.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .run_config import Config, Summary

if TYPE_CHECKING:
    from .runs import Run

run: Run | None = None
config: Config = Config()
summary: Summary = Summary()


def project_or(default: str) -> str:
    """The active run's project, else ``default``: where an address without a project points."""
    return run.project if run is not None else default
