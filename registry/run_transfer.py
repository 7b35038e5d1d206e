"""Moving one run to another store: its blobs (saved files, logged images), history, then its record.

The record is written last, so a reader never sees a run whose history or files are missing;
``registry sync``, ``registry copy`` and ``registry import`` all move runs this way.
"""
from __future__ import annotations

from typing import Any, Literal

from backends import Backend

from . import keys
from .blob_transfer import Sent, send_blobs
from .blobs import BlobStore
from .protection import Protection
from .records import RunRecord
from .run_records import read_history
from .store import Store

Outcome = Literal["present", "written", "conflict"]


def run_blobs(backend: Backend, record: RunRecord) -> set[str]:
    """Every blob a run's record and history name: files kept with ``save`` and logged images."""
    shas = {f.sha256 for f in record.files}
    for row in read_history(backend, record):
        for value in row.values():
            shas.update(_image_shas(value))
    return shas


def _image_shas(value: Any) -> list[str]:
    if isinstance(value, dict) and value.get("_type") == "image" and isinstance(value.get("sha256"), str):
        return [value["sha256"]]
    if isinstance(value, list):
        return [sha for item in value for sha in _image_shas(item)]
    return []


def transfer_run(source: Backend, source_blobs: BlobStore, dest: Store, record: RunRecord, body: bytes,
                 *, replace: bool, sent: Sent | None = None) -> Outcome:
    """Put ``record`` (whose bytes to write are ``body``) and everything it names into ``dest``.

    ``replace``: a mirror overwrites a different record of the same run (the source is newer);
    otherwise (sync, import) a different record already there is a ``conflict``, left alone.
    """
    key = keys.run(record.project, record.id)
    existing = _read_or_none(dest.backend, key)
    if existing == body:
        return "present"
    if existing is not None and not replace:
        return "conflict"
    with Protection(dest.blobs) as guard:
        moved = send_blobs(source_blobs, guard, run_blobs(source, record))
        if sent is not None:
            sent.add(moved)
        for seq in range(record.history_chunks):
            chunk = keys.history_chunk(record.project, record.id, seq)
            data = _read_or_none(source, chunk)
            if data is not None and _read_or_none(dest.backend, chunk) != data:
                dest.backend.write(chunk, data)
        outcome = _write_record(dest.backend, key, body, replace)
        guard.settle()
    return outcome


def _write_record(backend: Backend, key: str, body: bytes, replace: bool) -> Outcome:
    if replace:
        backend.write(key, body)
        return "written"
    try:
        backend.write_if_absent(key, body)
    except FileExistsError:
        return "present" if backend.read(key) == body else "conflict"
    return "written"


def _read_or_none(backend: Backend, key: str) -> bytes | None:
    try:
        return backend.read(key)
    except FileNotFoundError:
        return None
