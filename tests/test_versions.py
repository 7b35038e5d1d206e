"""Versions, digests and aliases: the storage semantics, on every backend."""
from __future__ import annotations

import json

import pytest

import registry
from backends import open_backend
from helpers import log_files
from store_contents import content_keys, holdings
from registry import keys
from registry.hashing import sha256_bytes


def test_first_log_makes_v0_with_latest(api: registry.Api) -> None:
    art = log_files("data", {"a.txt": b"A", "dir/b.txt": b"B"}, aliases=["best"])
    assert (art.version, art.created, art.qualified_name) == ("v0", True, "proj/data:v0")
    assert set(art.aliases) == {"latest", "best"}
    assert api.artifact("proj/data:latest").digest == art.digest
    assert api.artifact("proj/data:best").version == "v0"


def test_identical_contents_return_the_latest_version(api: registry.Api) -> None:
    first = log_files("data", {"a.txt": b"A"})
    again = log_files("data", {"a.txt": b"A"}, aliases=["prod"])
    assert (again.version, again.created) == ("v0", False)
    assert again.digest == first.digest
    assert "prod" in api.artifact("proj/data:v0").aliases  # requested aliases still apply
    assert [a.version for a in api.artifact_versions("proj/data")] == ["v0"]


def test_reverting_to_older_contents_makes_a_new_version(api: registry.Api) -> None:
    v0 = log_files("data", {"a.txt": b"A"})
    v1 = log_files("data", {"a.txt": b"B"})
    v2 = log_files("data", {"a.txt": b"A"})
    assert [v0.version, v1.version, v2.version] == ["v0", "v1", "v2"]
    assert v2.digest == v0.digest and v2.created
    assert api.artifact("proj/data:latest").version == "v2"
    assert [int(a.version[1:]) for a in api.artifact_versions("proj/data")] == [0, 1, 2]


def test_digest_is_the_hash_of_the_canonical_file_list(store_url: str) -> None:
    art = log_files("data", {"b.txt": b"B", "a.txt": b"A"})
    backend = open_backend(store_url)
    body = backend.read(keys.blob(art.digest))
    import hashlib

    assert hashlib.sha256(body).hexdigest() == art.digest
    listing = json.loads(body)
    assert [f["path"] for f in listing["files"]] == ["a.txt", "b.txt"]
    assert listing["files"][0] == {"path": "a.txt", "sha256": hashlib.sha256(b"A").hexdigest(), "size": 1}


def test_same_contents_in_other_artifacts_share_blobs(store_url: str) -> None:
    log_files("one", {"x.bin": b"shared" * 1000})
    before = content_keys(store_url)
    two = log_files("two", {"y.bin": b"shared" * 1000}, project="other")
    assert content_keys(store_url) - before == {keys.blob(two.digest)}  # its file list only: no blob, no pack
    assert len(holdings(store_url)[sha256_bytes(b"shared" * 1000)]) == 1  # the bytes are stored once


def test_address_by_digest_finds_the_versions_holding_it(api: registry.Api) -> None:
    v0 = log_files("data", {"a.txt": b"A"})
    log_files("data", {"a.txt": b"B"})
    v2 = log_files("data", {"a.txt": b"A"})
    found = api.artifact(f"proj/data@sha256:{v0.digest}")
    assert found.version == v2.version  # the newest version with that digest
    with pytest.raises(registry.NotFoundError):
        api.artifact("proj/data@sha256:" + "0" * 64)


def test_aliases_move_and_are_removed(api: registry.Api) -> None:
    log_files("model", {"w": b"1"})
    log_files("model", {"w": b"2"})
    api.set_alias("proj/model:v0", "best")
    assert api.artifact("proj/model:best").version == "v0"
    api.set_alias("proj/model:v1", "best")
    assert api.artifact("proj/model:best").version == "v1"
    assert api.artifact("proj/model:v0").aliases == []
    api.remove_alias("proj/model", "best")
    with pytest.raises(registry.NotFoundError, match="no alias 'best'"):
        api.artifact("proj/model:best")


def test_alias_compare_and_swap_reports_a_lost_race(api: registry.Api) -> None:
    log_files("model", {"w": b"1"})
    log_files("model", {"w": b"2"})
    api.set_alias("proj/model:v0", "best")
    assert api.set_alias("proj/model:v1", "best", expected_version=0) is True
    with pytest.raises(registry.ConflictError):
        api.set_alias("proj/model:v0", "best", expected_version=0)  # it moved to v1 meanwhile
    assert api.artifact("proj/model:best").version == "v1"


@pytest.mark.parametrize("alias", ["latest", "v3", "v0"])
def test_registry_kept_aliases_cannot_be_set(api: registry.Api, alias: str) -> None:
    log_files("model", {"w": b"1"})
    with pytest.raises(registry.InvalidNameError, match="kept by the registry"):
        api.set_alias("proj/model:v0", alias)


def test_latest_never_moves_backwards(store_url: str) -> None:
    from registry.store import open_store
    from registry.versions import advance_latest, read_version

    log_files("data", {"a": b"1"})
    log_files("data", {"a": b"2"})
    store = open_store(store_url)
    advance_latest(store.backend, read_version(store.backend, "proj", "data", 0))  # a slow writer of v0
    assert registry.Api(store_url).artifact("proj/data:latest").version == "v1"


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "a:b", "has space", "x" * 129, "..", "tab\there", "ünïcode", "semi;colon"],
)
def test_invalid_names_are_refused_with_the_rule(store_url: str, bad: str) -> None:
    with pytest.raises(registry.InvalidNameError, match="letters, digits"):
        registry.Artifact(bad, type="dataset")
    with pytest.raises(registry.InvalidNameError):
        registry.init(project=bad)


def test_missing_artifact_error_names_it(api: registry.Api) -> None:
    log_files("ghosts", {"a.txt": b"A"})
    with pytest.raises(registry.NotFoundError, match=r"proj/ghost does not exist \(did you mean ghosts\?\): list artifacts with `registry ls proj`"):
        api.artifact("proj/ghost:latest")
    with pytest.raises(registry.NotFoundError, match=r"no project 'prj' \(did you mean proj\?\); list projects with `registry ls`"):
        api.artifact("prj/ghosts:best")
    with pytest.raises(LookupError):  # also a builtin
        api.artifact("proj/ghost:v3")


def test_store_layout_after_two_versions(store_url: str) -> None:
    log_files("data", {"a.txt": b"A"})
    log_files("data", {"a.txt": b"B"})
    keys_now = [i.key for i in open_backend(store_url).list("projects/proj/artifacts/")]
    assert "projects/proj/artifacts/data/versions/v0.json" in keys_now
    assert "projects/proj/artifacts/data/versions/v1.json" in keys_now
    assert "projects/proj/artifacts/data/aliases/latest.json" in keys_now
    assert sum("/digests/" in k for k in keys_now) == 2
