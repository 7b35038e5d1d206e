"""Text output pieces shared by the commands: tables, counts, times, run references."""
from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .shapes import json_default

if TYPE_CHECKING:  # annotations only
    from .. import ApiRun
    from ..records import RunRef


def plural(n: int, word: str) -> str:
    """``plural(1, "file")`` -> ``"1 file"``; ``plural(2, "file")`` -> ``"2 files"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def when(value: datetime | None) -> str:
    """A time in the local zone, to the minute; ``-`` for none."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Left-aligned columns two spaces apart, sized to their widest cell."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def run_ref_text(project: str, ref: RunRef | None) -> str:
    """A run reference, without its project when that is ``project``."""
    if ref is None:
        return "-"
    return ref.id if ref.project == project else f"{ref.project}/{ref.id}"


def run_line(run: ApiRun) -> str:
    return f"{run.path} ({run.name}, {run.job_type or 'run'}, {run.state})"


def dump_value(value: Any) -> str:
    """A config, summary or metadata value on one line, as JSON."""
    return json.dumps(value, ensure_ascii=False, default=json_default)
