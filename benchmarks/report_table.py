"""Text for the benchmark's report: a table of titled column groups, and one-line accounts of a
measured run (its traffic, and what a registry worker said it did)."""
from __future__ import annotations

from transfer_runner import Result, short


def fmt(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


class Table:
    """Columns in titled groups (a title line over a column line). A column is (name, width):
    cells are right-aligned, or left-aligned where the width is negative."""

    def __init__(self, groups: list[tuple[str, list[tuple[str, int]]]]) -> None:
        self.groups = groups
        self.rows: list[str] = []

    def header(self) -> list[str]:
        widths = [sum(abs(w) + 1 for _, w in cols) - 1 for _, cols in self.groups]
        titles = " | ".join(f"{t[:width]:<{width}s}" for (t, _), width in zip(self.groups, widths))
        names = self._line([[n for n, _ in cols] for _, cols in self.groups])
        return [titles.rstrip(), names, "-" * len(names)]

    def add(self, cells: list[list[str]], tail: str = "") -> None:
        """One row: a list of cells per group, in the groups' order."""
        self.rows.append(self._line(cells) + tail)

    def _line(self, cells: list[list[str]]) -> str:
        return " | ".join(" ".join(f"{c:<{-w}s}" if w < 0 else f"{c:>{w}s}" for c, (_, w) in zip(group, cols))
                          for group, (_, cols) in zip(cells, self.groups))


def traffic_text(r: Result) -> str:
    if r.traffic is None:
        return ""
    kinds = " ".join(f"{k}:{n}" for k, n in r.requests.items())
    return f"  up {short(r.up)} down {short(r.down)} req {r.request_count} ({kinds})"


def worker_text(r: Result) -> str:
    """What a registry worker said it did: files hashed, obstore calls, the version."""
    st = r.stats
    if not st:
        return ""
    text = f"  hashed={st.get('hashed_files')} files/{short(st.get('hashed_bytes', 0))} calls={st.get('requests')}"
    for k in ("version", "schema", "created", "placed", "unchanged"):
        if k in st:
            text += f" {k}={st[k]}"
    return text
