"""Names for temp files that are renamed into place: unique across threads and processes.

The name carries the writer's process id, so a later download can tell the leftovers of a
killed process (whose pid is gone) from the temp files of one still running.
"""
from __future__ import annotations

import itertools
import os
import re
import secrets
from pathlib import Path

_owner: tuple[int, str] = (0, "")
_counter = itertools.count()
_TEMP_NAME = re.compile(r"\.(\d+)-[0-9a-f]{8}[0-9a-f]+\.part")


def temp_beside(path: Path) -> Path:
    """A fresh hidden ``.part`` name in ``path``'s directory (short: the final name may be 255 bytes).

    A random per-process prefix and a counter, so thousands of files cost no ``getrandom`` each.
    """
    global _owner
    if _owner[0] != os.getpid():  # first call, or a forked child
        _owner = (os.getpid(), f"{os.getpid()}-{secrets.token_hex(4)}")
    return path.with_name(f".{_owner[1]}{next(_counter):x}.part")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of ours (a user's ``video.part`` is not)."""
    return _TEMP_NAME.fullmatch(name) is not None


def is_abandoned(name: str) -> bool:
    """A temp file of ours whose writing process no longer runs on this machine."""
    match = _TEMP_NAME.fullmatch(name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive under another user (or not a pid we can ask about)
    return False
