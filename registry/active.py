"""The active run: what W&B keeps as ``wandb.run``, ``wandb.config`` and ``wandb.summary``.

Set by ``registry.init`` and cleared by ``finish``; the package reads it back through its
module ``__getattr__``, so no module has to import the package it belongs to.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .run_config import Config, Summary

if TYPE_CHECKING:
    from .runs import Run

run: Run | None = None
config: Config = Config()
summary: Summary = Summary()
start_auto_run: Callable[[str | None], Run] | None = None
"""Set by ``runs``: starts a run of job type ``auto`` in a project (``artifact.save()`` outside a
run logs through one, as in W&B), so that no module below ``runs`` has to import it."""


def project_or(default: str) -> str:
    """The active run's project, else ``default``: where an address without a project points."""
    return run.project if run is not None else default
