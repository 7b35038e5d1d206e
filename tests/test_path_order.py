"""Format 2's path order: prefixes cover contiguous runs, and a sorted stream of paths is checked
against exactly the rules format 1 applies to a whole file list."""
from __future__ import annotations

import doctest
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import path_order
from registry.errors import InvalidNameError
from registry.draft import ArtifactDraft
from registry.names import PathSet, validate_path_set
from registry.path_order import SortedPaths, path_key, prefix_side, range_may_hold

# Few, clashing names, so random sets share directories, prefixes and case-folded twins.
NAMES = ["a", "A", "ab", "a-b", "a.b", "b", "B", "é", "e\u0301", "ß", "ss", "z"]
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=4).map("/".join)
path_sets = st.lists(paths, max_size=40, unique=True)
prefixes = st.one_of(
    st.text(alphabet="aAbBz-./é", max_size=7),
    st.tuples(paths, st.integers(0, 12)).map(lambda pair: pair[0][:pair[1]]),
)


def test_paths_sort_component_by_component() -> None:
    assert sorted(["a-b", "a/b", "a", "a.b/c"], key=path_key) == ["a", "a/b", "a-b", "a.b/c"]


@settings(max_examples=300, deadline=None, database=None)
@given(path_sets, prefixes)
def test_the_paths_with_a_prefix_are_one_run_and_range_may_hold_finds_it(some: list[str], prefix: str) -> None:
    ordered = sorted(some, key=path_key)
    sides = [prefix_side(p, prefix) for p in ordered]
    assert sides == sorted(sides)  # before the run, in it, after it: so the run is contiguous
    assert [side == 0 for side in sides] == [p.startswith(prefix) for p in ordered]
    for i in range(len(ordered)):
        for j in range(i, len(ordered)):
            may_hold = range_may_hold(ordered[i], ordered[j], prefix)
            assert may_hold == (sides[i] <= 0 <= sides[j])  # skipped only when wholly before or after
            if any(p.startswith(prefix) for p in ordered[i:j + 1]):
                assert may_hold


@settings(max_examples=300, deadline=None, database=None)
@given(path_sets)
def test_sorted_paths_accepts_exactly_what_validate_path_set_accepts(some: list[str]) -> None:
    ordered = sorted(some, key=path_key)
    try:
        validate_path_set(ordered)
        allowed = True
    except InvalidNameError:
        allowed = False
    checker = SortedPaths()
    try:
        for path in ordered:
            checker.add(path)
        accepted = True
    except InvalidNameError:
        accepted = False
    assert accepted == allowed


@pytest.mark.parametrize(("stream", "says"), [
    (["b", "a"], "comes after 'b'"),
    (["a-b", "a/b"], "comes after 'a-b'"),  # string order would put "a-b" first
    (["a", "a"], "comes twice"),
    (["a", "a/b"], "'a' is a file but 'a/b' needs it to be a directory"),
    (["A", "B", "a"], "paths 'A' and 'a' collide"),
    (["d/Data/1", "d/Data/2", "d/Zed", "d/data/3"], "paths 'd/Data' and 'd/data' collide"),
    (["e\u0301.txt", "é.txt"], "collide"),
])
def test_sorted_paths_names_the_clash(stream: list[str], says: str) -> None:
    checker = SortedPaths()
    with pytest.raises(InvalidNameError, match=says) as raised:
        for path in stream:
            checker.add(path)
    assert "\n" not in str(raised.value)


def test_sorted_paths_holds_the_open_directories_not_the_stream() -> None:
    checker = SortedPaths()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):  # 2 x 100 directories of 100 files
            checker.add(f"top{i // 10_000}/dir{i // 100 % 100:03d}/file{i % 100:03d}")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 64 * 1024, held  # 20,000 names would take megabytes


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(path_order).failed == 0


@pytest.mark.parametrize(("batches", "says"), [
    ([["a"], ["a/b"]], "'a' is a file but another path needs 'a' to be a directory"),
    ([["a/b"], ["a"]], "'a' is a file but another path needs 'a' to be a directory"),
    ([["x/a/1", "x/a/2"], ["x/a/3", "x/a"]], "'x/a' is a file"),  # the directory met before, in a walk's run
    ([["Data/x"], ["data/y"]], "directories 'Data' and 'data' collide"),
    ([["k/A.txt"], ["k/a.txt"]], "paths 'k/A.txt' and 'k/a.txt' collide"),
    ([["dup"], ["dup"]], "collide"),
])
def test_a_path_set_checks_each_batch_against_the_paths_before_it(batches: list[list[str]], says: str) -> None:
    """A draft adds a large directory in batches: a clash across two batches is found as within one."""
    paths = PathSet()
    with pytest.raises(InvalidNameError, match=says):
        for batch in batches:
            paths.add_all(batch)
    with pytest.raises(InvalidNameError, match=says):
        validate_path_set([p for batch in batches for p in batch])


def test_a_draft_that_removed_a_directory_takes_a_file_of_its_name(tmp_path) -> None:
    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "a" / "b").write_bytes(b"1")
    (tmp_path / "a").write_bytes(b"2")
    draft = ArtifactDraft()
    draft.add_dir(tmp_path / "d")
    with pytest.raises(InvalidNameError, match="is a file"):
        draft.add_file(tmp_path / "a")
    draft.remove("a")
    draft.add_file(tmp_path / "a")
    assert [e.path for e in draft.entries()] == ["a"]
