"""How a download hands out its placements and what a copy tells its caller."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from registry.download import place_batches
from registry.placement import Placement, copy_file
from registry.records import FileEntry


def targets(dirs: int, per_dir: int) -> list[tuple[FileEntry, str]]:
    return [(FileEntry(path=f"d{d}/f{i}", sha256="0" * 64, size=1), f"/root/d{d}/f{i}")
            for d in range(dirs) for i in range(per_dir)]


@pytest.mark.parametrize(("dirs", "per_dir"), [(1, 1), (1, 1000), (50, 1000), (3, 7)])
def test_batches_hold_every_file_once_each_within_one_directory(dirs: int, per_dir: int) -> None:
    todo = targets(dirs, per_dir)
    batches = place_batches(todo, 256, 2)
    assert sorted(dest for batch in batches for _, dest in batch) == sorted(dest for _, dest in todo)
    assert all(len(batch) <= 256 and len({os.path.dirname(d) for _, d in batch}) == 1 for batch in batches)


def test_consecutive_batches_fill_different_directories() -> None:
    batches = place_batches(targets(50, 1000), 256, 2)
    directories = [os.path.dirname(batch[0][1]) for batch in batches]
    assert all(a != b for a, b in itertools.pairwise(directories))


def test_a_copy_returns_the_stat_its_file_keeps_after_the_rename(tmp_path: Path) -> None:
    source = tmp_path / "entry"
    source.write_bytes(os.urandom(5000))
    st = copy_file(source, tmp_path / "temp")
    os.replace(tmp_path / "temp", tmp_path / "dest")
    after = os.stat(tmp_path / "dest")
    assert (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) == (after.st_dev, after.st_ino, after.st_size,
                                                                  after.st_mtime_ns)
    assert (tmp_path / "dest").read_bytes() == source.read_bytes()


@pytest.mark.parametrize(("mode", "has_stat"), [("copy", True), ("hardlink", False)])
def test_placing_returns_a_stat_only_for_a_file_of_its_own(mode: str, has_stat: bool, tmp_path: Path) -> None:
    source = tmp_path / "entry"
    source.write_bytes(b"bytes")
    placement = Placement(mode)  # type: ignore[arg-type]
    for name in ("first", "second"):  # the second finds out what the filesystem can do
        st = placement.place(source, tmp_path / name)
        assert (st is not None) == has_stat
        if st is not None:
            assert st.st_ino == os.stat(tmp_path / name).st_ino
        assert (tmp_path / name).read_bytes() == b"bytes"
