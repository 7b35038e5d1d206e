"""Names for temp files that are renamed into place: unique across threads and processes."""
from __future__ import annotations

import itertools
import os
import secrets
from pathlib import Path

_owner: tuple[int, str] = (0, "")
_counter = itertools.count()


def temp_beside(path: Path) -> Path:
    """A fresh hidden ``.part`` name in ``path``'s directory (short: the final name may be 255 bytes).

    A random per-process prefix and a counter, so thousands of files cost no ``getrandom`` each.
    """
    global _owner
    if _owner[0] != os.getpid():  # first call, or a forked child
        _owner = (os.getpid(), secrets.token_hex(8))
    return path.with_name(f".{_owner[1]}{next(_counter):x}.part")
