"""The ``registry`` command: list, inspect, pull, push and promote artifacts without writing Python.

A thin layer over the public library (``registry.Api``, ``registry.init``, ``registry.gc``), one
module per concern so each command reads top to bottom:

- ``group``: the top-level ``registry`` group, its global options, the command order, ``main``
- ``errors``: one stderr line and an exit code for every failure (``--debug`` adds the traceback)
- ``state``: the global options, the lazily opened ``Api``, stdout/stderr/progress output
- ``params``: click parameter types (versions, sizes, durations, ``--metadata`` JSON)
- ``shapes``: the ``--json`` shapes documented in docs/CLI.md; ``text``: the text renderings
- commands: ``artifacts`` (ls, show), ``transfer`` (pull, push), ``aliases`` (alias set/rm),
  ``runs`` (runs, run), ``audit`` (lineage, diff, verify), ``maintenance`` (cache, gc), ``web`` (ui)
"""
from __future__ import annotations

from .group import cli, main
from .params import parse_duration

__all__ = ["cli", "main", "parse_duration"]
