"""Malformed store contents: every bad record or blob is a typed error naming it, and nothing lands.

Each test logs a healthy artifact, damages one object behind the registry's back (raw
backend writes), then reads and downloads it with a fresh cache: the result must be an
``IntegrityError`` (bytes or JSON that are wrong) or a ``NotFoundError`` (something missing)
whose message names the key (and the file, for blobs), and the download root stays empty.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from backends import open_backend
from helpers import log_files
from registry import keys
from store_fixtures import subprocess_env
from stored_bytes import StoredFile

BACKENDS = ["local", "moto", "seaweed"]
FILES = {"a.txt": b"alpha\n", "dir/b.txt": b"bravo\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@pytest.fixture
def logged(store_url: str) -> registry.Artifact:
    return log_files("data", FILES, aliases=["best"])


@pytest.fixture
def raw(store_url: str):
    """The bare backend: writes here bypass every check of the registry."""
    return open_backend(store_url)


def fresh_api(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str = "reader") -> registry.Api:
    """An Api with an empty cache of its own (a different machine, as far as caching goes)."""
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / f"cache-{tag}"))
    return registry.Api(store_url)


def attempt(api: registry.Api, address: str, root: Path) -> Exception:
    """Resolve and download ``address`` into ``root``; return the typed error it must raise."""
    with pytest.raises(registry.RegistryError) as raised:
        api.artifact(address).download(root)
    assert not root.exists() or list(root.iterdir()) == [], "something was written to the download root"
    return raised.value


def names(error: Exception, *needles: str) -> None:
    for needle in needles:
        assert needle in str(error), f"{needle!r} not named in: {error}"


# -- version records -------------------------------------------------------------------------
VERSION_DAMAGE = {
    "truncated": lambda body: body[: len(body) // 2],
    "garbage": lambda body: b"\x00\xff\xfe not json at all",
    "empty": lambda body: b"",
    "array": lambda body: b"[]",
    "null": lambda body: b"null",
    "missing-fields": lambda body: b'{"schema":1}',
    "wrong-type": lambda body: body.replace(b'"version":0', b'"version":"zero"'),
    "bad-digest": lambda body: re.sub(rb'"digest":"[0-9a-f]{64}"', b'"digest":"../../etc/passwd"', body),
    "deeply-nested": lambda body: b"[" * 100_000,
    "unknown-schema": lambda body: re.sub(rb'"schema":\d+', b'"schema":99', body),
}


def on_seaweed(store_url: str) -> bool:
    return store_url.startswith("s3://") and bool(os.environ.get("AWS_ENDPOINT_URL"))


def cases_for(store_url: str, cases) -> list[str]:
    """SeaweedFS stalls the request that follows a PUT of an empty body (until the client's read
    timeout, 60 s), a server quirk unrelated to the registry: 0-byte objects are tried elsewhere."""
    return [c for c in cases if not (on_seaweed(store_url) and c.endswith("empty"))]


def check_each(cases, run_one) -> None:
    """Run ``run_one(label)`` for every case, collecting failures so one run reports them all."""
    problems = {}
    for label in cases:
        try:
            run_one(label)
        except AssertionError as e:
            problems[label] = str(e).splitlines()[0]
    assert problems == {}


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_malformed_version_record(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    key = keys.version("proj", "data", 0)
    body = raw.read(key)

    def one(damage: str) -> None:
        damaged = VERSION_DAMAGE[damage](body)
        assert damaged != body, "damage did not apply"
        raw.write(key, damaged)
        try:
            api = fresh_api(store_url, tmp_path, monkeypatch, damage)
            for address in ("proj/data:v0", "proj/data:latest", "proj/data:best"):
                error = attempt(api, address, tmp_path / f"dl-{damage}")
                assert isinstance(error, registry.IntegrityError), f"{address}: {error!r}"
                names(error, key)
                if damage == "unknown-schema":
                    names(error, "schema 99")
        finally:
            raw.write(key, body)

    check_each(cases_for(store_url, VERSION_DAMAGE), one)


@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_version_record_under_the_wrong_key_is_refused(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    """A record copied to another key (other number, artifact or project) must not be believed."""
    log_files("data", {"a.txt": b"other\n"})
    key0 = keys.version("proj", "data", 0)
    raw.write(key0, raw.read(keys.version("proj", "data", 1)))  # v0.json now claims to be v1
    api = fresh_api(store_url, tmp_path, monkeypatch)
    error = attempt(api, "proj/data:v0", tmp_path / "dl")
    assert isinstance(error, registry.IntegrityError), repr(error)
    names(error, key0)


# -- aliases ---------------------------------------------------------------------------------
ALIAS_DAMAGE = {
    "truncated": lambda body: body[: len(body) // 2],
    "garbage": lambda body: b"\xff\xfe<html>500</html>",
    "empty": lambda body: b"",
    "unknown-schema": lambda body: body.replace(b'"schema":1', b'"schema":2'),
    "negative-version": lambda body: re.sub(rb'"version":\d+', b'"version":-1', body),
}


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_malformed_alias(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    def one(case: str) -> None:
        alias, damage = case.split(":")
        key = keys.alias("proj", "data", alias)
        body = raw.read(key)
        raw.write(key, ALIAS_DAMAGE[damage](body))
        try:
            api = fresh_api(store_url, tmp_path, monkeypatch, f"{alias}-{damage}")
            error = attempt(api, f"proj/data:{alias}", tmp_path / f"dl-{alias}-{damage}")
            assert isinstance(error, registry.IntegrityError), repr(error)
            names(error, key)
            api.artifact("proj/data:v0").download(tmp_path / f"by-number-{alias}-{damage}")  # the version is intact
        finally:
            raw.write(key, body)

    check_each(cases_for(store_url, [f"{alias}:{damage}" for alias in ("latest", "best") for damage in ALIAS_DAMAGE]), one)


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_alias_to_a_missing_version(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    def one(alias: str) -> None:
        key = keys.alias("proj", "data", alias)
        body = raw.read(key)
        raw.write(key, canonical({**json.loads(body), "version": 7}))
        try:
            api = fresh_api(store_url, tmp_path, monkeypatch, alias)
            error = attempt(api, f"proj/data:{alias}", tmp_path / f"dl-{alias}")
            assert isinstance(error, registry.NotFoundError), repr(error)
            names(error, key, "v7")
        finally:
            raw.write(key, body)

    check_each(["latest", "best"], one)


# -- file lists ------------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_version_whose_file_list_is_missing(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    raw.delete(keys.blob(logged.digest))
    api = fresh_api(store_url, tmp_path, monkeypatch)
    error = attempt(api, "proj/data:v0", tmp_path / "dl")
    assert isinstance(error, registry.NotFoundError), repr(error)
    names(error, keys.blob(logged.digest), "file list of proj/data:v0")


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_file_list_whose_bytes_do_not_match_its_digest(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    key = keys.blob(logged.digest)
    listing = json.loads(raw.read(key))
    listing["files"] = [f for f in listing["files"] if f["path"] != "dir/b.txt"]  # well-formed, but not the one hashed
    raw.write(key, canonical(listing))
    api = fresh_api(store_url, tmp_path, monkeypatch)
    error = attempt(api, "proj/data:v0", tmp_path / "dl")
    assert isinstance(error, registry.IntegrityError), repr(error)
    names(error, key, "file list of proj/data:v0")


FILE_LIST_BODIES = {
    "garbage": b"\x00garbage",
    "truncated": b'{"files":[{"path":"a.txt","sha256":"',
    "unknown-schema": None,  # filled in below
    "unsorted": None,
    "bad-sha": None,
    "negative-size": None,
}


def _file_list_body(kind: str) -> bytes:
    good = [{"path": "a.txt", "sha256": sha(FILES["a.txt"]), "size": 6}, {"path": "dir/b.txt", "sha256": sha(FILES["dir/b.txt"]), "size": 6}]
    if kind == "unknown-schema":
        return canonical({"schema": 3, "files": good})
    if kind == "unsorted":
        return canonical({"schema": 1, "files": good[::-1]})
    if kind == "bad-sha":
        return canonical({"schema": 1, "files": [{**good[0], "sha256": "../../x"}]})
    if kind == "negative-size":
        return canonical({"schema": 1, "files": [{**good[0], "size": -1}]})
    return FILE_LIST_BODIES[kind]


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_malformed_file_list_with_a_matching_digest(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    """A record pointing at a file list that hashes correctly but is not a valid file list."""
    key = keys.version("proj", "data", 0)
    record_body = raw.read(key)

    def one(kind: str) -> None:
        body = _file_list_body(kind)
        digest = sha(body)
        raw.write(keys.blob(digest), body)
        raw.write(key, canonical({**json.loads(record_body), "digest": digest}))
        try:
            api = fresh_api(store_url, tmp_path, monkeypatch, kind)
            error = attempt(api, "proj/data:v0", tmp_path / f"dl-{kind}")
            assert isinstance(error, registry.IntegrityError), repr(error)
            names(error, keys.blob(digest))
        finally:
            raw.write(key, record_body)

    check_each(list(FILE_LIST_BODIES), one)


# -- blobs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_missing_blob(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    """The object holding a file's bytes is gone: its blob, or (format 2 on S3) the pack its
    chunk is in, which holds the other file too."""
    stored = StoredFile.of(store_url, logged, "dir/b.txt")
    (key,) = stored.keys
    sharing = [path for path in FILES if key in StoredFile.of(store_url, logged, path).keys]
    stored.delete()
    api = fresh_api(store_url, tmp_path, monkeypatch)
    error = attempt(api, "proj/data:v0", tmp_path / "dl")
    assert isinstance(error, registry.NotFoundError), repr(error)
    names(error, key)
    assert any(f"'{path}'" in str(error) for path in sharing), f"no file of {key} named in: {error}"


BLOB_DAMAGE = {
    "same-size": b"BRAVO\n",
    "shorter": b"b",
    "longer": b"bravo\nand more\n",
    "longer-shifted": b"more, then bravo\n",
    "empty": b"",
}


def damages_for(store_url: str, stored: StoredFile) -> list[str]:
    """In a pack the bytes after a file's range are another chunk's, which a reader of the file
    never asks for: there "longer" (the right bytes, then more) is no damage at all. An empty
    object is tried where the object would be empty, except on SeaweedFS (see ``cases_for``)."""
    if stored.packed:
        return [c for c in BLOB_DAMAGE if c != "longer"]
    return cases_for(store_url, BLOB_DAMAGE)


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_blob_with_wrong_bytes(logged, raw, store_url: str, tmp_path: Path, monkeypatch) -> None:
    stored = StoredFile.of(store_url, logged, "dir/b.txt")
    (key,) = stored.keys

    def one(damage: str) -> None:
        stored.replace(BLOB_DAMAGE[damage])
        try:
            api = fresh_api(store_url, tmp_path, monkeypatch, damage)
            error = attempt(api, "proj/data:v0", tmp_path / f"dl-{damage}")
            assert isinstance(error, registry.IntegrityError), repr(error)
            names(error, key, "dir/b.txt")
        finally:
            stored.restore()
        # fine again once the blob is repaired: the bad bytes were kept nowhere
        root = Path(api.artifact("proj/data:v0").download(tmp_path / f"dl-{damage}"))
        assert (root / "dir" / "b.txt").read_bytes() == FILES["dir/b.txt"], "bad bytes were kept"

    check_each(damages_for(store_url, stored), one)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_cli_reports_a_malformed_record_in_one_line_with_its_exit_code(logged, raw, store_url: str, tmp_path: Path) -> None:
    key = keys.version("proj", "data", 0)
    raw.write(key, b"{truncated")
    root = tmp_path / "dl"
    proc = subprocess.run(
        [sys.executable, "-m", "registry.cli", "pull", "proj/data:v0", "-d", str(root)],
        env=subprocess_env(store_url, tmp_path / "cache-cli"), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == registry.IntegrityError.exit_code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("registry: error:") and key in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not root.exists() or list(root.iterdir()) == []


# -- the cache and downloads -----------------------------------------------------------------
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_editing_a_download_in_place_leaves_store_cache_and_other_downloads_intact(
    logged, raw, store_url: str, tmp_path: Path
) -> None:
    """Downloads may share bytes with the cache (reflink/hardlink); a user editing one must not
    corrupt the store, the cache, or another download of the same version."""
    api = registry.Api(store_url)
    art = api.artifact("proj/data:v0")
    first = Path(art.download(tmp_path / "first"))
    second = Path(art.download(tmp_path / "second"))
    target = first / "a.txt"
    os.chmod(target, 0o644)  # what an editor (or a root user, who needs no chmod) does
    with open(target, "ab") as f:
        f.write(b"edited in place\n")
    assert StoredFile.of(store_url, logged, "a.txt").read() == FILES["a.txt"], "the store's bytes changed"
    assert (second / "a.txt").read_bytes() == FILES["a.txt"], "another download changed"
    art.verify()  # the cache still holds the right bytes
    third = Path(api.artifact("proj/data:v0").download(tmp_path / "third"))
    assert (third / "a.txt").read_bytes() == FILES["a.txt"]


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_a_corrupted_cache_entry_is_fetched_again(logged, store_url: str, tmp_path: Path) -> None:
    api = registry.Api(store_url)
    art = api.artifact("proj/data:v0")
    art.download(tmp_path / "first")
    entry = api.store.cache.entry_path(sha(FILES["dir/b.txt"]))
    os.chmod(entry, 0o644)
    os.unlink(entry)  # replace (not edit) the entry, so no download shares the bad bytes
    entry.write_bytes(b"BRAVO\n")  # same size
    root = Path(api.artifact("proj/data:v0").download(tmp_path / "second"))
    assert (root / "dir" / "b.txt").read_bytes() == FILES["dir/b.txt"]
    art.verify(root)
