"""Faults on the default (obstore) engine, injected by a proxy in front of the real SeaweedFS:
retried through, or a clean typed failure that places nothing. (tests/test_faults.py does the
same for the botocore engine, through botocore's event hooks on moto.)"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import backends.s3_obstore as s3_obstore
import registry
from helpers import log_files
from http_proxy import SeenRequest, slow_down
from store_fixtures import proxy_of, small_parts

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
    small_parts(monkeypatch, 5 * 1024 * 1024)
    files = {f"f{i}.bin": os.urandom(3000) for i in range(30)} | {"big.bin": os.urandom(11 * 1024 * 1024)}
    proxy = proxy_of(store_url)
    proxy.rule = every(3, slow_down(503))
    art = log_files("data", files)
    another_machine(monkeypatch, tmp_path)
    proxy.rule = every(4, "drop", only=lambda r: r.method == "GET")
    root = Path(registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "out"))
    assert {p.name: p.read_bytes() for p in root.iterdir()} == files
    assert art.version == "v0"
    assert proxy.faults.count("503") >= 10 and proxy.faults.count("drop") >= 5


def test_a_server_that_stays_down_is_a_clear_error_after_the_retries(store_url: str) -> None:
    log_files("data", {"a.txt": b"a"})
    proxy = proxy_of(store_url)
    proxy.rule = lambda r: slow_down(503)
    with pytest.raises(registry.StorageError, match=r"failed \(SlowDown\)"):
        registry.Api(store_url).artifact("proj/data:latest")
    assert len(proxy.faults) == s3_obstore.MAX_ATTEMPTS


def garbage_for(request: SeenRequest, size: int):
    """Wrong bytes of the length asked for (a ranged GET gets as many as its range holds)."""
    if "range" not in request.headers:
        return 200, b"x" * 16
    first, _, last = request.headers["range"][len("bytes="):].partition("-")
    length = int(last) - int(first) + 1
    return 206, b"x" * length, {"Content-Range": f"bytes {first}-{last}/{size}"}


def test_bytes_changed_on_the_way_are_refused_and_nothing_lands(store_url: str, tmp_path: Path, monkeypatch) -> None:
    """Whole GETs and ranged parts alike: the blob is hashed before anything is placed."""
    small_parts(monkeypatch, 5 * 1024 * 1024)
    files = {"small.txt": b"original bytes", "big.bin": os.urandom(11 * 1024 * 1024)}
    art = log_files("data", files)
    proxy = proxy_of(store_url)
    for name in files:
        another_machine(monkeypatch, tmp_path / name)
        sha = next(f.digest for f in art.files() if f.path == name)
        size = len(files[name])
        proxy.rule = lambda r, sha=sha, size=size: (
            garbage_for(r, size) if r.method == "GET" and r.path.endswith(sha[2:]) else None
        )
        with pytest.raises(registry.IntegrityError, match=name):
            registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / name / "out")
        assert not (tmp_path / name / "out").exists() or list((tmp_path / name / "out").iterdir()) == []
    assert proxy.faults.count("200") == 1 and proxy.faults.count("206") == 3  # 11 MiB in 5 MiB parts
