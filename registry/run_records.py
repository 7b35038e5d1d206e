"""Reading runs back: run records, their history chunks, and the runs that used a version.

The read side below both ``Api`` and ``Artifact`` (an artifact asks who logged and used it),
so neither needs the other to find a run.
"""
from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backends import Backend

from . import keys
from .errors import IntegrityError, NotFoundError
from .names import validate_name
from .records import RunRecord, UsedByEntry, VersionRecord, parse

_RUN_ID = re.compile(r"[0-9a-f]{8}|[0-9a-f]{14}")
_TIMED_RUN_ID = re.compile(r"[0-9a-f]{14}")
RECENT_WINDOWS = (3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400)
"""How far back ``newest_runs`` looks, widening until it has found enough runs."""


def read_run(backend: Backend, project: str, run_id: str) -> RunRecord:
    """The record of ``project/run_id``; ``NotFoundError`` when there is none."""
    key = keys.run(validate_name(project, "project"), validate_name(run_id, "run id"))
    try:
        return parse(RunRecord, backend.read(key), key)
    except FileNotFoundError:
        raise NotFoundError(
            f"run {project}/{run_id} does not exist: list runs with `registry runs {project}`"
        ) from None


def find_run(backend: Backend, project: str, id_or_name: str, workers: int) -> RunRecord:
    """A run by id, else by display name (which reads every run of the project)."""
    try:
        return read_run(backend, project, id_or_name)
    except NotFoundError:
        if _RUN_ID.fullmatch(id_or_name):
            raise
        for record in read_runs(backend, project, workers):
            if record.name == id_or_name:
                return record
        raise


def run_ids(backend: Backend, project: str) -> list[str]:
    """The ids of a project's runs, from one listing."""
    return backend.list_children(keys.runs_prefix(validate_name(project, "project")))


def read_runs(backend: Backend, project: str, workers: int, limit: int | None = None) -> list[RunRecord]:
    """Every run of a project (or the ``limit`` newest), newest first, read in parallel."""
    if limit is None:
        return read_many(backend, project, run_ids(backend, project), workers)
    return read_many(backend, project, newest_run_ids(backend, project, limit), workers)[:limit]


def newest_run_ids(backend: Backend, project: str, limit: int, now: float | None = None) -> list[str]:
    """The ids of (at least) the ``limit`` newest runs, without listing every run of the project.

    Time-ordered ids let a listing start at a recent moment; the window widens (an hour, a
    day, ... a year, everything) until it holds ``limit`` runs. Runs of older stores (random
    ids, no order) are all returned when the time-ordered ones are too few: their records tell.
    """
    prefix = keys.runs_prefix(validate_name(project, "project"))
    moment = time.time() if now is None else now
    for window in (*RECENT_WINDOWS, None):
        after = None if window is None else keys.run_id_prefix(moment - window)
        ids = backend.list_children(prefix, start_after=after)
        timed = [i for i in ids if _TIMED_RUN_ID.fullmatch(i)]
        if len(timed) >= limit:
            # Ids order runs by the second they started in (then at random): take the whole
            # boundary second, and the one before it, so the records' start times decide.
            cut = int(timed[-limit][:8], 16) - 1
            return [i for i in timed if int(i[:8], 16) >= cut]
    return ids


def read_many(backend: Backend, project: str, run_ids_: list[str], workers: int) -> list[RunRecord]:
    """These runs' records, newest first, read in parallel (ids listed then deleted are skipped)."""

    def read(run_id: str) -> RunRecord | None:
        try:
            return read_run(backend, project, run_id)
        except NotFoundError:
            return None

    if not run_ids_:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(run_ids_))) as pool:
        found = [r for r in pool.map(read, run_ids_) if r is not None]
    return sorted(found, key=lambda r: r.started_at, reverse=True)


def users_of(backend: Backend, version: VersionRecord, workers: int) -> list[RunRecord]:
    """The runs that used ``version`` (its used-by entries), read in parallel; vanished runs are skipped."""

    def read(key: str) -> RunRecord | None:
        entry = parse(UsedByEntry, backend.read(key), key)
        try:
            return read_run(backend, entry.run.project, entry.run.id)
        except NotFoundError:
            return None

    prefix = keys.used_by_prefix(version.project, version.name, version.version)
    found = [info.key for info in backend.list(prefix)]
    if not found:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(found))) as pool:
        return [r for r in pool.map(read, found) if r is not None]


def read_history(backend: Backend, run: RunRecord) -> list[dict[str, Any]]:
    """Every row a run logged, in order."""
    rows: list[dict[str, Any]] = []
    for seq in range(run.history_chunks):
        key = keys.history_chunk(run.project, run.id, seq)
        try:
            text = backend.read(key).decode()
            rows.extend(json.loads(line) for line in text.splitlines() if line)
        except FileNotFoundError:
            continue
        except ValueError:
            raise IntegrityError(f"malformed history chunk {key}: repair or delete it") from None
    return rows
