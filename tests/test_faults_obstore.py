"""Faults on the default (obstore) engine, injected by a proxy in front of the real SeaweedFS:
retried through, or a clean typed failure that places nothing. (tests/test_faults.py does the
same for the botocore engine, through botocore's event hooks on moto.)"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import log_files
from http_proxy import SeenRequest, slow_down
from store_fixtures import proxy_of, small_parts
from stored_bytes import StoredFile

import backends.s3_obstore as s3_obstore
import registry
import registry.pack_reader as pack_reader
from backends import StorageUnavailable, open_backend
from registry import keys
from registry.versions import version_numbers

pytestmark = pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_obstore, "MAX_BACKOFF", 0.02)


def another_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No cache and no known local copies: every byte must come through the proxy."""
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "other-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "other-data"))


def every(n: int, fault, only=lambda r: True):
    """A proxy rule: every ``n``-th request that ``only`` accepts gets ``fault``."""
    count = {"n": 0}

    def rule(request: SeenRequest):
        if not only(request):
            return None
        count["n"] += 1
        return fault if count["n"] % n == 0 else None

    return rule


def test_503s_and_dropped_connections_are_retried_through(store_url: str, tmp_path: Path, monkeypatch) -> None:
    small_parts(monkeypatch, 5 * 1024 * 1024)  # loose blobs in parts; a pack reader's ranges of ~1 MiB:
    monkeypatch.setattr(pack_reader, "SPAN_MAX", 1024 * 1024)  # a GET to drop every few chunks
    files = {f"f{i}.bin": os.urandom(3000) for i in range(30)} | {"big.bin": os.urandom(11 * 1024 * 1024)}
    proxy = proxy_of(store_url)
    proxy.rule = every(3, slow_down(503))
    art = log_files("data", files)
    another_machine(monkeypatch, tmp_path)
    drop, dropped = every(3, "drop", only=lambda r: r.method == "GET"), []
    proxy.rule = lambda r: (dropped.append(r.path) or "drop") if drop(r) else None
    root = Path(registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "out"))
    assert {p.name: p.read_bytes() for p in root.iterdir()} == files
    assert art.version == "v0"
    assert proxy.faults.count("503") >= 10 and proxy.faults.count("drop") >= 5
    assert any("/packs/" in path for path in dropped)  # ranged reads of packs among them


def test_a_server_that_stays_down_is_a_clear_error_after_the_retries(store_url: str) -> None:
    log_files("data", {"a.txt": b"a"})
    proxy = proxy_of(store_url)
    proxy.rule = lambda r: slow_down(503)
    with pytest.raises(registry.StorageError, match=r"failed \(SlowDown\)"):
        registry.Api(store_url).artifact("proj/data:latest")
    assert len(proxy.faults) == s3_obstore.MAX_ATTEMPTS


def changed_on_the_way(request: SeenRequest, stored: StoredFile, bodies: dict[str, bytes]):
    """The bytes asked for, of the length asked for, with every byte of the file's own inverted
    (a ranged GET of a pack gets its range: the other chunks in it arrive intact)."""
    key = next(k for k in stored.keys if request.path.endswith(k))
    body = bytearray(bodies[key])
    for piece in stored.pieces:
        if piece.key == key:
            body[piece.start : piece.end] = bytes(b ^ 0xFF for b in body[piece.start : piece.end])
    if "range" not in request.headers:
        return 200, bytes(body)
    first, _, last = request.headers["range"][len("bytes="):].partition("-")
    return 206, bytes(body[int(first) : int(last) + 1]), {"Content-Range": f"bytes {first}-{last}/{len(body)}"}


def test_bytes_changed_on_the_way_are_refused_and_nothing_lands(store_url: str, tmp_path: Path, monkeypatch) -> None:
    """Whole GETs and ranged ones alike: each chunk is hashed before anything is placed, and
    the error names the file whose bytes were changed, not a neighbour in the same pack."""
    monkeypatch.setattr(pack_reader, "SPAN_MAX", 4 * 1024 * 1024)  # the large file in several ranges
    files = {"small.txt": b"original bytes", "big.bin": os.urandom(11 * 1024 * 1024)}
    art = log_files("data", files)
    proxy = proxy_of(store_url)
    for name in files:
        another_machine(monkeypatch, tmp_path / name)
        proxy.rule = None  # the true bytes, to change on the way
        stored = StoredFile.of(store_url, art, name)
        bodies = {key: stored.raw.read(key) for key in stored.keys}
        proxy.rule = lambda r, stored=stored, bodies=bodies: (
            changed_on_the_way(r, stored, bodies) if r.method == "GET" and any(r.path.endswith(k) for k in stored.keys)
            else None
        )
        before = len(proxy.faults)
        with pytest.raises(registry.IntegrityError, match=name):
            registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / name / "out")
        assert not (tmp_path / name / "out").exists() or list((tmp_path / name / "out").iterdir()) == []
        changed = proxy.faults[before:]
        assert changed and set(changed) <= {"200", "206"}
        if name == "big.bin":
            assert len(changed) >= 3  # 11 MiB in ranges of at most 4 MiB, each refused


def corrupt_uploads(request: SeenRequest):
    """A proxy rule: every request that sends a body (PUT, a multipart part) has a byte changed."""
    return "corrupt" if request.method == "PUT" and request.headers.get("content-length", "0") != "0" else None


def test_bytes_changed_on_the_way_up_are_refused_by_the_server(store_url: str, tmp_path: Path, monkeypatch) -> None:
    """Uploads are not signed over their bodies: each carries its CRC-64/NVME, which SeaweedFS
    checks. A byte changed between this process and the server -- a single PUT, a multipart
    part, a pack -- gets BadDigest, and nothing lands under the key."""
    small_parts(monkeypatch, 5 * 1024 * 1024)
    backend = open_backend(store_url)
    proxy = proxy_of(store_url)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(11 * 1024 * 1024))  # three parts
    proxy.rule = corrupt_uploads
    with pytest.raises(StorageUnavailable, match="BadDigest"):
        backend.write("blobs/small", b"some bytes to store")
    with pytest.raises(StorageUnavailable, match="BadDigest"):
        backend.write_file("blobs/big", source)
    proxy.rule = lambda r: corrupt_uploads(r) if "/packs/" in r.path else None
    with pytest.raises(registry.StorageError, match="BadDigest"):
        log_files("data", {"a.bin": os.urandom(3 * 1024 * 1024)})  # its chunks in one pack
    corrupted = proxy.faults.count("corrupt")
    proxy.rule = None
    assert corrupted >= 3
    assert not backend.exists("blobs/small") and not backend.exists("blobs/big")
    assert list(backend.list(keys.packs_prefix())) == [] and version_numbers(backend, "proj", "data") == []
    sent = [r for r in proxy.requests("PUT") if r.headers.get("content-length", "0") != "0"]
    assert sent and all(r.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD" for r in sent)
    assert all("x-amz-checksum-crc64nvme" in r.headers for r in sent)


def test_uploads_the_server_checked_read_back_whole(store_url: str, tmp_path: Path, monkeypatch) -> None:
    """The same kinds of upload through an honest link land, and read back byte for byte."""
    small_parts(monkeypatch, 5 * 1024 * 1024)
    backend = open_backend(store_url)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(11 * 1024 * 1024))
    backend.write("blobs/small", b"some bytes to store")
    backend.write_file("blobs/big", source)
    assert backend.read("blobs/small") == b"some bytes to store"
    assert backend.read("blobs/big") == source.read_bytes()
