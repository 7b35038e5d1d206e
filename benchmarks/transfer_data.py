"""The data ``transfer.py`` moves: its workloads, generated as random bytes in a temp dir, and
the edits that later steps make to them."""
from __future__ import annotations

import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from transfer_runner import human

KiB, MiB, GiB = 1024, 1024**2, 1024**3
EDIT_SEED = 16
"""W3-edit's offsets and bytes come from this seed: every run edits the same places."""
EDIT_WRITES = 10
"""W3-edit overwrites 1 % of the file in this many writes (10 x ~1 MiB of a GiB)."""
EDIT_INSERT = KiB
"""W3-edit's second edit inserts this many bytes in the middle of the original."""
EDIT_TREES = ("original", "overwritten", "inserted")
"""W3-edit's three directories, logged in this order (each holds the file under the same name)."""


@dataclass
class Workload:
    name: str
    count: int
    size: int
    per_dir: int = 100
    """Files per directory, when there are more than 100 files."""

    def describe(self) -> str:
        text = f"{self.name}: {self.count} x {human(self.size)} = {human(self.count * self.size)}"
        if self.count > 100:
            text += f" in {math.ceil(self.count / self.per_dir)} directories"
        if self.name == "W3-edit":
            text += (f"; edits: {EDIT_WRITES} x {human(self.size // 100 // EDIT_WRITES)} overwritten, "
                     f"then {human(EDIT_INSERT)} inserted in the middle of the original")
        return text

    def rel(self, i: int) -> str:
        return f"d{i // self.per_dir:03d}/f{i:05d}.bin" if self.count > 100 else f"f{i:05d}.bin"


def workloads(scale: float) -> dict[str, Workload]:
    """W1-W3 of issue 4 and W4, W3-edit of issue 16; ``scale`` shrinks file counts (W1, W4) or sizes."""
    w4_count = max(50, round(50_000 * scale))
    return {
        "W1": Workload("W1", max(10, round(2000 * scale)), 64 * KiB),
        "W2": Workload("W2", 64, max(64 * KiB, int(16 * MiB * scale))),
        "W3": Workload("W3", 1, max(MiB, int(GiB * scale))),
        "W4": Workload("W4", w4_count, KiB, per_dir=w4_count // 50),
        "W3-edit": Workload("W3-edit", 1, max(MiB, int(GiB * scale))),
    }


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def write_small_files(folder: Path, names: list[str], size: int) -> None:
    """Many small random files in one directory: one ``urandom`` call and three system calls a file."""
    folder.mkdir(parents=True, exist_ok=True)
    data = memoryview(os.urandom(size * len(names)))
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for k, name in enumerate(names):
        fd = os.open(folder / name, flags, 0o644)
        try:
            os.write(fd, data[k * size:(k + 1) * size])
        finally:
            os.close(fd)


def generate(wl: Workload, root: Path) -> None:
    if wl.name == "W3-edit":
        generate_edits(wl, root)
    elif wl.size <= 4 * KiB:
        by_dir: dict[str, list[str]] = {}
        for i in range(wl.count):
            folder, _, name = wl.rel(i).rpartition("/")
            by_dir.setdefault(folder, []).append(name)
        for folder, names in by_dir.items():
            write_small_files(root / folder, names, wl.size)
    else:
        for i in range(wl.count):
            write_random(root / wl.rel(i), wl.size)


def change_one_percent(wl: Workload, root: Path) -> int:
    """Rewrite 4 KiB (or the whole file, if smaller) at the start of ceil(1 %) of the files (at
    least one); returns how many."""
    n = max(1, math.ceil(wl.count / 100))
    step = wl.count // n
    for k in range(n):
        with open(root / wl.rel(k * step), "r+b") as f:
            f.write(os.urandom(min(4 * KiB, wl.size)))
    return n


def generate_edits(wl: Workload, root: Path) -> None:
    """W3-edit's three trees: the original file; a copy with 1 % of its bytes overwritten in
    ``EDIT_WRITES`` writes at seeded random offsets (one in each tenth, so none overlap); and
    the original with ``EDIT_INSERT`` bytes inserted in the middle."""
    original, overwritten, inserted = (root / tree / wl.rel(0) for tree in EDIT_TREES)
    write_random(original, wl.size)
    overwritten.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(original, overwritten)
    rng = random.Random(EDIT_SEED)
    length, tenth = wl.size // 100 // EDIT_WRITES, wl.size // EDIT_WRITES
    with open(overwritten, "r+b") as f:
        for k in range(EDIT_WRITES):
            f.seek(k * tenth + rng.randrange(tenth - length))
            f.write(rng.randbytes(length))
    inserted.parent.mkdir(parents=True, exist_ok=True)
    middle = wl.size // 2
    with open(original, "rb") as src, open(inserted, "wb") as out:
        _copy_bytes(src, out, middle)
        out.write(rng.randbytes(EDIT_INSERT))
        _copy_bytes(src, out, wl.size - middle)


def _copy_bytes(src, out, count: int) -> None:
    while count:
        block = src.read(min(count, 16 * MiB))
        out.write(block)
        count -= len(block)


def same_tree(a: Path, b: Path, full: bool) -> bool:
    import filecmp

    def listing(root: Path) -> dict[str, int]:
        return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}

    la, lb = listing(a), listing(b)
    if la != lb:
        return False
    return not full or all(filecmp.cmp(a / p, b / p, shallow=False) for p in la)
