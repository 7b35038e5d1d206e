"""Runs: one execution of a pipeline step, with config, summary, history and its artifacts.

The run record is written by the run alone (at start, after each artifact it logs or uses,
and at the end), so it needs no locking. History rows are buffered and written in chunks.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import random
import socket
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

from . import active, keys
from .alias_moves import audit_moves
from .artifact import Artifact
from .draft import ArtifactDraft
from .errors import ConflictError, InvalidNameError, RegistryError
from .filelists import read_file_list
from .hashing import sha256_bytes
from .jsonable import to_jsonable
from .lifecycle import require_online
from .links import refuse_logging_into_registry
from .media import Image
from .names import parse_address, validate_name, validate_path
from .protection import Protection
from .publish import draft_record, publish
from .records import FileEntry, RunRecord, RunRef, UsedByEntry, VersionRecord, now
from .run_config import Config, Summary
from .run_models import ModelCalls, artifact_from_path, default_name
from .seen import remember
from .store import Store, open_store
from .versions import BaseMovedError, CommitResult, aliases_of, latest_number, read_version, resolve

logger = logging.getLogger("registry")
HISTORY_FLUSH_ROWS = 500
HISTORY_FLUSH_SECONDS = 10.0
INCREMENTAL_ATTEMPTS = 20
_ADJECTIVES = [
    "sunny", "misty", "bright", "quiet", "lively", "gentle", "bold", "silent", "golden", "crimson",
    "autumn", "winter", "dry", "fresh", "lunar", "solar", "rapid", "brave",
]
_NOUNS = [
    "smoke", "river", "forest", "meadow", "ocean", "flower", "sky", "cloud", "mountain", "wave",
    "dawn", "field", "frost", "glade", "planet", "star", "shadow", "thunder",
]


class Run(ModelCalls):
    """A run in a project; use as a context manager, or call ``finish()``."""

    def __init__(self, store: Store, project: str, job_type: str | None, config: dict | None,
                 name: str | None, tags: list[str] | None, notes: str | None) -> None:
        self.store = store
        self.project = validate_name(project, "project")
        self.job_type = validate_name(job_type, "job type") if job_type is not None else None
        self.id = keys.new_run_id()
        self.name = name or _readable_name(store, self.project)
        self.config = Config(config or {})
        self.summary = Summary()
        self._history: list[dict] = []
        self._history_seq = 0
        self._last_flush = time.monotonic()
        self._step = 0
        self._images: Protection | None = None
        """Guards the blobs of images logged since the last history flush."""
        self._record = RunRecord(
            project=self.project, id=self.id, name=self.name, job_type=self.job_type,
            tags=list(tags or []), notes=notes, started_at=now(), host=socket.gethostname(),
            python=platform.python_version(), git_commit=_git_commit(),
        )
        self._finished = False
        self._create_record()

    # -- record ----------------------------------------------------------------------------
    @property
    def ref(self) -> RunRef:
        return RunRef(project=self.project, id=self.id)

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"

    def _create_record(self) -> None:
        """The first write claims the id (write-if-absent): two runs started in the same second
        with the same random part (one in 16 million) never share a record; the second picks again."""
        while True:
            body = self._record_bytes()
            try:
                self.store.backend.write_if_absent(keys.run(self.project, self.id), body)
                return
            except FileExistsError:
                if self.store.backend.read(keys.run(self.project, self.id)) == body:
                    return  # our own write landed; only its response was lost
                self.id = keys.new_run_id()
                self._record.id = self.id

    def _record_bytes(self) -> bytes:
        """The run record as the run's state is now."""
        self._record.config = dict(self.config)
        self._record.summary = dict(self.summary)
        self._record.history_chunks = self._history_seq
        return self._record.to_bytes()

    def _write_record(self) -> None:
        self.store.backend.write(keys.run(self.project, self.id), self._record_bytes())

    # -- artifacts -------------------------------------------------------------------------
    def log_artifact(self, artifact_or_path: Artifact | str | os.PathLike, name: str | None = None,
                     type: str | None = None, aliases: list[str] | None = None, tags: list[str] | None = None,
                     progress=None) -> Artifact:
        """Log a new version of ``artifact`` (or return the latest when contents are identical).

        As in W&B, a file or directory path is logged as an artifact named ``name`` (default
        ``run-<run id>-<basename>``) of ``type`` (default ``unspecified``), and ``tags`` are set
        on the version.
        """
        artifact = artifact_or_path if isinstance(artifact_or_path, Artifact) else \
            artifact_from_path(artifact_or_path, name or default_name(self.id, artifact_or_path), type)
        files = artifact.draft  # raises if it is already logged: a version never changes
        refuse_logging_into_registry(self.project)
        if tags:  # offline, refused before anything is logged rather than after
            require_online(self.store, "tagging a version")
        metadata = to_jsonable(artifact.metadata, "metadata")
        draft = draft_record(self.project, artifact.name, artifact.type, artifact.description, metadata,
                             self.ref)
        if files.incremental:
            result = self._publish_on_latest(artifact.name, draft, files, list(aliases or []), progress)
        else:
            result = publish(self.store, draft, files.entries(), files.sources(), list(aliases or []),
                             progress=progress)
        record = result.record
        version_aliases = aliases_of(self.store.backend, record.project, record.name).get(record.version, [])
        artifact.attach(self.store, record, version_aliases, created=result.created)
        audit_moves(self.store, record, result.moved)
        if tags:
            artifact.tags = tags
            artifact.save()
        if result.created:
            self._record.outputs.append(record.ref())
            self._write_record()
        else:
            # Said once, by the caller that knows its audience (``artifact.created`` is False); the
            # CLI and the example print their own line, so a warning here would say it twice.
            logger.info("%s already holds these contents; no new version logged", artifact.qualified_name)
        return artifact

    def _publish_on_latest(self, name: str, draft: VersionRecord, files: ArtifactDraft, aliases: list[str],
                           progress) -> CommitResult:
        """An incremental draft on top of the highest committed version (its files stay where they
        are), built again if another writer commits first, so that no one's files are dropped."""
        for _ in range(INCREMENTAL_ATTEMPTS):
            base_number = latest_number(self.store.backend, self.project, name)
            base: list[FileEntry] = []
            if base_number is not None:  # read errors propagate: an unreadable base is no empty one
                record = read_version(self.store.backend, self.project, name, base_number)
                base = list(read_file_list(self.store, record).files)
            try:
                return publish(self.store, draft, files.on_top_of(base), files.sources(), aliases,
                               progress=progress, after=base_number)
            except BaseMovedError:
                continue
        raise ConflictError(
            f"{self.project}/{name} kept moving under {INCREMENTAL_ATTEMPTS} attempts: retry later"
        )

    def use_artifact(self, artifact_or_address: Artifact | str, type: str | None = None) -> Artifact:
        """Declare an input of this run and return it, ready to download."""
        if isinstance(artifact_or_address, Artifact):
            artifact = artifact_or_address
            artifact.record  # noqa: B018 - raises unless it is logged
        else:
            address = parse_address(artifact_or_address, self.project)
            with self.store.explain_missing():
                record = resolve(self.store.backend, address)
            remember(self.store, address, record)
            artifact = Artifact.from_record(self.store, record)
        if type is not None and artifact.type != type:
            raise InvalidNameError(f"{artifact.qualified_name} has type {artifact.type!r}, not {type!r}")
        record = artifact.record
        if record.ref() not in self._record.inputs:
            self._record.inputs.append(record.ref())
            self.store.backend.write(
                keys.used_by(record.project, record.name, record.version, self.project, self.id),
                UsedByEntry(run=self.ref, used_at=now()).to_bytes(),
            )
            self._write_record()
        return artifact

    # -- metrics ---------------------------------------------------------------------------
    def log(self, data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
        """Append a history row; values may be numbers, tensors, ``Image``s or lists of them."""
        if step is not None:
            self._step = int(step)
        last = self._history[-1] if self._history else None
        if last is not None and last["_step"] == self._step:
            row = last  # W&B merges rows logged at the same step
        else:
            row = {"_step": self._step, "_time": time.time()}
            self._history.append(row)
        for key, value in data.items():
            row[key] = self._history_value(key, value)
            if not isinstance(row[key], (list, dict)):
                self.summary[key] = row[key]  # as in W&B: the summary holds the last logged value
        if step is None:
            self._step += 1
        overdue = time.monotonic() - self._last_flush > HISTORY_FLUSH_SECONDS
        if len(self._history) >= HISTORY_FLUSH_ROWS or overdue:
            self._flush_history()

    def _history_value(self, key: str, value: Any) -> Any:
        if isinstance(value, Image):
            sha = sha256_bytes(value.png)
            if self._images is None:  # safe from gc until the history chunk naming them is written
                self._images = Protection(self.store.blobs).open()
            self._images.upload_missing({sha: value.png})
            return {"_type": "image", "sha256": sha, "width": value.width, "height": value.height,
                    "caption": value.caption}
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, Image) for v in value):
            return [self._history_value(key, v) for v in value]
        return to_jsonable(value, f"history[{key!r}]", finite=False)

    def _flush_history(self) -> None:
        self._last_flush = time.monotonic()
        if not self._history:
            return
        body = "".join(json.dumps(row, sort_keys=True) + "\n" for row in self._history).encode()
        self.store.backend.write(keys.history_chunk(self.project, self.id, self._history_seq), body)
        self._history_seq += 1
        self._history = []
        self._write_record()
        if self._images is not None:
            images, self._images = self._images, None
            try:
                images.settle()
            finally:
                images.close()

    def save(self, path: str | Path, base_path: str | None = None) -> None:
        """Keep a file with the run (stored as a blob, listed in the run record)."""
        source = Path(path)
        if not source.is_file():
            raise InvalidNameError(f"cannot save {source}: no such file")
        name = validate_path(source.name if base_path is None else source.relative_to(base_path).as_posix())
        sha, size = self.store.hashes.hash_files([source])[0]
        with Protection(self.store.blobs, [sha]) as guard:  # safe from gc until the run record names it
            guard.upload_missing({sha: source})
            kept = [f for f in self._record.files if f.path != name]
            self._record.files = [*kept, FileEntry(path=name, sha256=sha, size=size)]
            self._write_record()
            guard.settle()

    # -- lifecycle -------------------------------------------------------------------------
    def finish(self, exit_code: int = 0, error: str | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            self._flush_history()
            self._record.state = "finished" if exit_code == 0 and error is None else "crashed"
            self._record.error = error
            self._record.ended_at = now()
            self._write_record()
        finally:
            _deactivate(self)  # even when the store is gone: the next init must not find it active
            if self._images is not None:  # a flush that failed: stop refreshing its marker
                self._images.close()
                self._images = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.finish()
            return
        try:
            self.finish(1, error="".join(traceback.format_exception_only(exc_type, exc)).strip())
        except RegistryError as failed:  # the block's own exception is the one to report
            logger.warning("registry: run %s could not record that it crashed: %s", self.path, failed)

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} ({self.name})>"


def _readable_name(store: Store, project: str) -> str:
    count = len(store.backend.list_children(keys.runs_prefix(project)))
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{count + 1}"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# -- the active run, as W&B's module-level ``wandb.run`` / ``wandb.config`` / ``wandb.log`` --------
def _deactivate(run: Run) -> None:
    if active.run is run:
        active.run = None


def init(project: str | None = None, job_type: str | None = None, config: dict | None = None,
         name: str | None = None, tags: list[str] | None = None, notes: str | None = None,
         url: str | None = None, mode: str | None = None, **ignored: Any) -> Run:
    """Start a run (and make it ``registry.run``); use it as a context manager.

    ``mode="offline"`` (W&B's name; or ``REGISTRY_MODE=offline``) logs to a local outbox that
    ``registry sync`` publishes later, and resolves inputs from what this machine has seen.

    >>> with registry.init(project="demo", job_type="load-data") as run:   # doctest: +SKIP
    ...     run.log_artifact(artifact)
    """
    if active.run is not None:
        active.run.finish()
    store = open_store(url, mode)
    run = Run(store, project if project is not None else store.settings.project, job_type, config, name, tags,
              notes)
    active.run, active.config, active.summary = run, run.config, run.summary
    return run


def _auto_run(project: str | None) -> Run:
    return init(project=project, job_type="auto")


active.start_auto_run = _auto_run


def _active() -> Run:
    if active.run is None:
        raise RegistryError("no active run: call registry.init() first")
    return active.run


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    _active().log(data, step=step, commit=commit)


def save(path: str | Path, base_path: str | None = None) -> None:
    _active().save(path, base_path=base_path)


def finish(exit_code: int = 0) -> None:
    if active.run is not None:
        active.run.finish(exit_code)
