"""Names for temp files that are renamed into place: unique across threads and processes.

The name carries the writer's host and process id, so a later download on the same host can
tell the leftovers of a killed process (whose pid is gone) from the temp files of one still
running; a temp file from another host (a download directory on a shared disk, another
container) is never taken for a leftover.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import secrets
import socket
from pathlib import Path
from typing import overload

_owner: tuple[int, str] = (0, "")
_counter = itertools.count()
_TEMP_NAME = re.compile(r"\.([0-9a-f]{4})(\d+)-[0-9a-f]{8}[0-9a-f]+\.part")


@functools.cache
def _host_tag() -> str:
    """Four hex digits naming this host (and container): enough to tell hosts sharing a disk apart."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]


@overload
def temp_beside(path: Path) -> Path: ...
@overload
def temp_beside(path: str) -> str: ...
def temp_beside(path: Path | str) -> Path | str:
    """A fresh hidden ``.part`` name in ``path``'s directory (short: the final name may be 255 bytes),
    of the same kind as ``path`` (a download of many files keeps plain strings).

    A random per-process prefix and a counter, so thousands of files cost no ``getrandom`` each.
    """
    global _owner
    if _owner[0] != os.getpid():  # first call, or a forked child
        _owner = (os.getpid(), f"{_host_tag()}{os.getpid()}-{secrets.token_hex(4)}")
    name = f".{_owner[1]}{next(_counter):x}.part"
    if isinstance(path, str):
        return os.path.join(os.path.dirname(path), name)
    return path.with_name(name)


def remove_if_present(path: Path | str) -> None:
    """Delete a temp file that may never have been made, or may be gone already."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of ours (a user's ``video.part`` is not)."""
    return _TEMP_NAME.fullmatch(name) is not None


def is_abandoned(name: str) -> bool:
    """A temp file of ours, written on this host by a process that no longer runs."""
    match = _TEMP_NAME.fullmatch(name)
    if match is None or match.group(1) != _host_tag():
        return False
    try:
        os.kill(int(match.group(2)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive under another user (or not a pid we can ask about)
    return False


def keep_copy(path: Path, data: bytes) -> None:
    """Save ``data`` at ``path`` through a temp file and a rename (never half-written), for a
    local copy of something the store holds: failing only costs fetching it again later."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_beside(path)
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        pass
