"""Index sets (docs/FORMAT.md, "Index sets"): gc gathers pack indexes into a few objects, so a
machine that has never seen the store fetches a few sets instead of an index per pack; a set
only ever saves requests, whatever state it is in."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import registry
import registry.gc as gc_module
import registry.gc_index_sets as gc_index_sets
import registry.pack_locations as pack_locations
from helpers import log_files
from registry import keys
from registry.errors import IntegrityError
from registry.gc import collect_garbage
from registry.index_sets import HEADER, MAGIC, RECORD, encode_set, parse_set
from registry.packs import PackBuilder
from registry.settings import Settings
from registry.store import Store
from store_contents import pack_contents
from store_fixtures import record_reads

PACKS = 10


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sets are written from 8 packs in none, and read for loads of 4 packs or more (not 256 and 64:
    the same code, on a store a test can build in seconds)."""
    monkeypatch.setenv("REGISTRY_FORMAT", "2")
    monkeypatch.setattr(gc_index_sets, "SET_MIN", 8)
    monkeypatch.setattr(pack_locations, "SET_WORTH", 4)


def _machine(tmp_path: Path, name: str) -> Store:
    return Store(Settings.from_env().model_copy(update={"cache_dir": tmp_path / f"cache-{name}"}))


def _indexes(count: int) -> dict[str, bytes]:
    built = {}
    for _ in range(count):
        builder = PackBuilder()
        for _ in range(3):
            data = os.urandom(50)
            builder.add(hashlib.sha256(data).hexdigest(), data)
        pack = builder.build()
        built[pack.pack_id] = pack.index
    return built


def _named(body: bytes) -> str:
    return keys.index_set(hashlib.sha256(body).hexdigest())


def _log_many(count: int = PACKS) -> dict[str, dict[str, bytes]]:
    """``count`` artifacts of one small file each: a pack (and an index) each."""
    logged = {}
    for i in range(count):
        files = {f"f{i}.bin": os.urandom(500)}
        log_files(f"a{i}", files)
        logged[f"a{i}"] = files
    return logged


def _index_gets(reads: list[tuple[str, tuple[int, int] | None]]) -> tuple[int, int]:
    """(GETs of per-pack indexes, GETs of index sets) among ``reads``."""
    return (sum(f"/{keys.pack_index_prefix()}" in f"/{key}" for key, _ in reads),
            sum(f"/{keys.index_sets_prefix()}" in f"/{key}" for key, _ in reads))


def test_a_set_round_trips_and_every_damage_is_named() -> None:
    indexes = _indexes(3)
    set_id, body = encode_set(indexes)
    key = keys.index_set(set_id)
    parsed = parse_set(body, key)
    assert sorted(parsed) == sorted(indexes) and all(len(entries) == 3 for entries in parsed.values())
    first = min(indexes)
    damaged = {
        "renamed": (body, keys.index_set("0" * 64)),
        "magic": (b"RGIDXS99" + body[8:], None),
        "truncated": (body[:-10], None),
        "trailing": (body + b"\0", None),
        "unsorted": (HEADER.pack(MAGIC, 2) + 2 * (RECORD.pack(bytes.fromhex(first), len(indexes[first]))
                                                  + indexes[first]), None),
        "bad index": (body[:-1] + bytes([body[-1] ^ 1]), None),
    }
    for data, name in damaged.values():
        name = name or _named(data)
        with pytest.raises(IntegrityError, match=name.replace(".", r"\.")):
            parse_set(data, name)


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_gc_gathers_indexes_into_a_set_and_a_cold_machine_fetches_it_instead(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logged = _log_many()
    cold = _machine(tmp_path, "before")
    reads = record_reads(cold)
    cold.pack_indexes.load_all()
    assert _index_gets(reads) == (PACKS, 0)  # an index per pack
    listing = {i.key for i in cold.backend.list("")}
    dry = collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0, dry_run=True)
    assert len(dry.index_sets_written) == 1 and {i.key for i in cold.backend.list("")} == listing
    report = collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0)
    assert report.index_sets_written == dry.index_sets_written
    assert collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0).index_sets_written == []  # all in it now
    cold = _machine(tmp_path, "after")
    reads = record_reads(cold)
    cold.pack_indexes.load_all()
    assert _index_gets(reads) == (0, 1)  # one set, no index
    api = registry.Api(store=cold)
    for name, files in logged.items():
        root = Path(api.artifact(f"proj/{name}:v0").download(tmp_path / name))
        assert {p.name: p.read_bytes() for p in root.iterdir()} == files


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_a_set_naming_deleted_packs_is_harmless_and_gc_replaces_it(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logged = _log_many()
    (old_set,) = collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0).index_sets_written
    api = registry.Api(store=_machine(tmp_path, "deleter"))
    gone = sorted(logged)[: PACKS - 4]  # 4 left: under half the set, enough to read sets for
    gone_packs = {p for name in gone for p in api.artifact(f"proj/{name}:v0").record.packs or ()}
    for name in gone:
        api.artifact(f"proj/{name}:v0").delete()
    with monkeypatch.context() as patch:  # this gc deletes the packs and leaves the set naming them
        patch.setattr(gc_module, "compact_indexes", lambda store, report: None)
        collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0)
    assert not gone_packs & set(pack_contents(open_backend_of(store_url)))
    cold = _machine(tmp_path, "reader")
    cold.pack_indexes.load_all()
    assert all(cold.pack_indexes.entries_of(p) == {} for p in gone_packs)  # taken from no stale set
    for name in sorted(set(logged) - set(gone)):
        root = Path(registry.Api(store=cold).artifact(f"proj/{name}:v0").download(tmp_path / name))
        assert {p.name: p.read_bytes() for p in root.iterdir()} == logged[name]
    report = collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0)
    assert report.index_sets_deleted == [old_set] and report.index_sets_written == []  # 4 left: too few
    assert not cold.backend.exists(keys.index_set(old_set))


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_a_damaged_set_costs_only_the_requests_it_saved(store_url: str, tmp_path: Path) -> None:
    logged = _log_many()
    (set_id,) = collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0).index_sets_written
    backend = open_backend_of(store_url)
    body = backend.read(keys.index_set(set_id))
    backend.write(keys.index_set(set_id), body[: len(body) // 2])
    cold = _machine(tmp_path, "reader")
    reads = record_reads(cold)
    cold.pack_indexes.load_all()
    assert _index_gets(reads) == (PACKS, 1)  # the set was read, refused, and every index fetched instead
    for name, files in logged.items():
        root = Path(registry.Api(store=cold).artifact(f"proj/{name}:v0").download(tmp_path / name))
        assert {p.name: p.read_bytes() for p in root.iterdir()} == files


def open_backend_of(store_url: str):
    from backends import open_backend

    return open_backend(store_url)
