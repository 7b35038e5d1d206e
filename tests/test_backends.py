"""The backend contract, run against every backend: the primitives the registry builds on."""
from __future__ import annotations

from pathlib import Path

import pytest

from backends import PreconditionFailed, open_backend
from registry.store import GuardedBackend


@pytest.fixture
def backend(store_url: str):
    return open_backend(store_url)


def test_write_read_stat_delete(backend) -> None:
    backend.write("a/b.txt", b"hello")
    assert backend.read("a/b.txt") == b"hello"
    info = backend.stat("a/b.txt")
    assert info.size == 5 and info.key == "a/b.txt"
    backend.delete("a/b.txt")
    assert not backend.exists("a/b.txt")
    backend.delete("a/b.txt")  # deleting a missing key is fine


def test_missing_key_is_file_not_found(backend) -> None:
    with pytest.raises(FileNotFoundError):
        backend.read("nope")
    with pytest.raises(FileNotFoundError):
        backend.stat("nope")


def test_write_if_absent_refuses_existing(backend) -> None:
    backend.write_if_absent("k", b"1")
    with pytest.raises(FileExistsError):
        backend.write_if_absent("k", b"2")
    assert backend.read("k") == b"1"


def test_write_if_match_is_compare_and_swap(backend) -> None:
    token = backend.write_if_absent("alias", b"v1")
    data, read_token = backend.read_with_token("alias")
    assert data == b"v1" and read_token == token
    new_token = backend.write_if_match("alias", b"v2", token)
    with pytest.raises(PreconditionFailed):
        backend.write_if_match("alias", b"v3", token)  # stale token loses
    assert backend.read("alias") == b"v2"
    assert backend.stat("alias").token == new_token


def test_list_is_sorted_and_prefixed(backend) -> None:
    for key in ["p/x/2", "p/x/1", "p/y/1", "q/1"]:
        backend.write(key, b"")
    assert [i.key for i in backend.list("p/x/")] == ["p/x/1", "p/x/2"]
    assert [i.key for i in backend.list("p/")] == ["p/x/1", "p/x/2", "p/y/1"]
    assert backend.list_children("p/") == ["x", "y"]
    assert backend.list_children("none/") == []


def test_files_round_trip(backend, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 100_000)
    backend.write_file("f", source)
    target = tmp_path / "dst.bin"
    backend.read_to_file("f", target, size=100_000)
    assert target.read_bytes() == source.read_bytes()


def test_list_paginates_past_one_page(backend) -> None:
    for i in range(1005):
        backend.write(f"many/{i:05d}", b"")
    assert len(list(backend.list("many/"))) == 1005


def test_capability_probe_passes_on_a_conforming_store(backend) -> None:
    backend.check_ready()
    assert list(backend.list("_probe/")) == []  # the probe cleans up after itself


@pytest.mark.parametrize("store_url", ["moto", "seaweed"], indirect=True)
def test_missing_bucket_is_one_clear_error(store_url: str) -> None:
    from registry.errors import StorageError

    guarded = GuardedBackend(open_backend("s3://no-such-bucket-xyz/prefix"))
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-xyz' does not exist"):
        guarded.read("k")


def test_list_children_after_a_name(backend) -> None:
    for name in ("a", "a-b", "ab", "b", "b0", "c"):
        backend.write(f"runs/{name}/run.json", b"{}")
    backend.write("runs/loose.txt", b"not a child directory")
    assert backend.list_children("runs/") == ["a", "a-b", "ab", "b", "b0", "c"]
    assert backend.list_children("runs/", start_after="a") == ["a-b", "ab", "b", "b0", "c"]
    assert backend.list_children("runs/", start_after="b") == ["b0", "c"]
    assert backend.list_children("runs/", start_after="bz") == ["c"]
    assert backend.list_children("runs/", start_after="c") == []
