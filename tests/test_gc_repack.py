"""gc rewrites packs that are mostly dead (docs/FORMAT.md, "How gc reclaims"): live chunks move
into new packs, the old packs go, and readers, writers and a killed collector lose nothing.

Packs are written on S3 stores; a local-directory store gets them by ``registry copy`` from
one (it keeps the files it is given whole otherwise), which is how its tests are built here.

Run as ``python test_gc_repack.py gc POINT`` this file is a collector that stops (and waits to
be killed) at POINT, its new packs stored (see ``KILL_POINTS``).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import registry
from helpers import kill_when_paused, log_files
from registry import keys
from registry.gc import collect_garbage
from registry.gc_repack import REWRITE_BELOW
from registry.hashing import sha256_bytes
from registry.packs import TRAILER_SIZE
from registry.records import InflightMarker, now
from registry.settings import Settings
from registry.store import Store, open_store
from store_contents import holdings, pack_contents
from store_fixtures import seaweed_store_url, subprocess_env

BACKENDS = ["local", "seaweed"]
SIZE, PER_PACK = 2000, 20
"""Every file of the scenario has SIZE random bytes; each artifact ``a<i>`` holds PER_PACK of them."""
DEAD: dict[str, bytes] = {}
"""The files of the last scenario that only deleted versions held."""


@pytest.fixture(autouse=True)
def format_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_FORMAT", "2")


def _files(prefix: str, count: int) -> dict[str, bytes]:
    return {f"{prefix}/{i:02d}.bin": os.urandom(SIZE) for i in range(count)}


def _machine(tmp_path: Path, name: str) -> Store:
    """The store as another machine (its own cache and pack indexes) sees it."""
    return Store(Settings.from_env().model_copy(update={"cache_dir": tmp_path / f"cache-{name}"}))


def _packed(store_url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            logs: dict[str, dict[str, bytes]]) -> None:
    """Log ``logs`` (artifact name -> files) in order, in packs: on S3 directly, into a local
    store by logging on SeaweedFS and copying the project over."""
    if store_url.startswith("s3://"):
        for name, files in logs.items():
            log_files(name, files)
        return
    staging = seaweed_store_url(request, monkeypatch, f"staging-{uuid.uuid4().hex[:12]}")
    for name, files in logs.items():
        log_files(name, files)
    registry.finish()
    registry.copy_store(staging, store_url, projects=["proj"])
    monkeypatch.setenv("REGISTRY_URL", store_url)


def _mostly_dead(store_url: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                 live: int, packs: int = 1) -> tuple[dict[str, bytes], list[str]]:
    """``packs`` packs of PER_PACK files each (artifacts a0, a1...); ``keep`` holds the first
    ``live`` files of each (found in those packs, so it writes none); then the a's are deleted.
    Returns keep's files and the packs; the dead files are in ``DEAD``."""
    logs = {f"a{i}": _files(f"a{i}", PER_PACK) for i in range(packs)}
    kept = {path: data for files in logs.values() for path, data in list(files.items())[:live]}
    DEAD.clear()
    DEAD.update({path: data for files in logs.values() for path, data in files.items() if path not in kept})
    _packed(store_url, request, monkeypatch, {**logs, "keep": kept})
    api = registry.Api(store_url)
    pack_ids = sorted({p for i in range(packs) for p in api.artifact(f"proj/a{i}:v0").record.packs or ()})
    assert len(pack_ids) == packs and set(api.artifact("proj/keep:v0").record.packs or ()) == set(pack_ids)
    for i in range(packs):
        api.artifact(f"proj/a{i}:v0").delete()
    return kept, pack_ids


def _download(store_url: str, tmp_path: Path, address: str, name: str) -> dict[str, bytes]:
    """``address`` pulled by a machine that has never seen the store, verified."""
    art = registry.Api(store=_machine(tmp_path, name)).artifact(address)
    root = Path(art.download(tmp_path / name))
    art.verify(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _stored(store: Store) -> dict[str, int]:
    """Every blob, pack and index -> its size."""
    prefixes = (keys.blob_prefix(), keys.packs_prefix(), keys.pack_index_prefix())
    return {info.key: info.size for prefix in prefixes for info in store.backend.list(prefix)}


# -- what is rewritten ------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_mostly_dead_packs_are_rewritten_into_one_and_survivors_download_identical(
        store_url: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    kept, old = _mostly_dead(store_url, request, monkeypatch, live=9, packs=2)  # 45 % live each
    store = _machine(tmp_path, "gc")
    before = _stored(store)
    report = collect_garbage(store, grace_seconds=0)
    assert sorted(report.repacked) == old
    assert report.rewritten_bytes == len(kept) * SIZE
    (new,) = report.new_packs  # the two remainders share one new pack, which holds only them
    assert pack_contents(store.backend) == {new: frozenset(sha256_bytes(b) for b in kept.values())}
    for pack in old:
        assert not store.backend.exists(keys.pack(pack)) and not store.backend.exists(keys.pack_index(pack))
    after = _stored(store)
    # what gc says it freed is what the store lost, but for the new pack's two trailers
    assert sum(before.values()) - sum(after.values()) == report.freed_bytes - 2 * TRAILER_SIZE
    assert _download(store_url, tmp_path, "proj/keep:v0", "reader") == kept


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_pack_above_the_threshold_is_kept_whole(store_url: str, tmp_path: Path, request: pytest.FixtureRequest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    live = 11  # 55 % live: above the threshold
    assert live / PER_PACK >= REWRITE_BELOW
    kept, (pack,) = _mostly_dead(store_url, request, monkeypatch, live=live)
    store = _machine(tmp_path, "gc")
    report = collect_garbage(store, grace_seconds=0)
    assert report.repacked == [] and report.new_packs == [] and report.rewritten_bytes == 0
    assert list(pack_contents(store.backend)) == [pack] and len(pack_contents(store.backend)[pack]) == PER_PACK
    assert _download(store_url, tmp_path, "proj/keep:v0", "reader") == kept


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_dry_run_reports_the_rewrite_and_writes_nothing(store_url: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _mostly_dead(store_url, request, monkeypatch, live=3, packs=2)
    store = _machine(tmp_path, "gc")
    listing = {(i.key, i.size) for i in store.backend.list("")}
    written: list[str] = []
    real_write = store.backend.write

    def spy(key: str, *args, **kwargs):
        written.append(key)
        return real_write(key, *args, **kwargs)

    monkeypatch.setattr(store.backend, "write", spy)
    dry = collect_garbage(store, grace_seconds=0, dry_run=True)
    assert len(dry.repacked) == 2 and dry.rewritten_bytes == 6 * SIZE and dry.freed_bytes > 0
    assert [k for k in written if not k.startswith(keys.gc_lock_prefix())] == []  # only its own lock
    assert {(i.key, i.size) for i in store.backend.list("")} == listing
    real = collect_garbage(store, grace_seconds=0)
    assert (real.repacked, real.rewritten_bytes, real.freed_bytes, sorted(real.deleted)) == \
        (dry.repacked, dry.rewritten_bytes, dry.freed_bytes, sorted(dry.deleted))
    assert len(real.new_packs) == 1


@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_pack_named_by_an_in_flight_marker_is_not_repacked(store_url: str, tmp_path: Path,
                                                             request: pytest.FixtureRequest,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    kept, (pack,) = _mostly_dead(store_url, request, monkeypatch, live=3)
    store = _machine(tmp_path, "gc")
    marker = keys.inflight("writer-relying-on-the-pack")
    store.backend.write(marker, InflightMarker(started_at=now(), blobs=[pack]).to_bytes())
    report = collect_garbage(store, grace_seconds=0)
    assert report.repacked == [] and store.backend.exists(keys.pack(pack))
    assert len(pack_contents(store.backend)[pack]) == PER_PACK
    store.backend.delete(marker)  # the writer finished
    assert collect_garbage(store, grace_seconds=0).repacked == [pack]
    assert _download(store_url, tmp_path, "proj/keep:v0", "reader") == kept


# -- readers and writers racing a repack ------------------------------------------------------
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_reader_holding_a_stale_index_still_downloads(store_url: str, tmp_path: Path,
                                                       request: pytest.FixtureRequest,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    kept, (pack,) = _mostly_dead(store_url, request, monkeypatch, live=3)
    reader = _machine(tmp_path, "reader")
    art = registry.Api(store=reader).artifact("proj/keep:v0")
    some_chunk = sha256_bytes(next(iter(kept.values())))
    assert reader.pack_indexes.locate([some_chunk], art.record.packs or ())[some_chunk].pack == pack
    report = collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0)  # another machine repacks
    assert report.repacked == [pack]
    root = Path(art.download(tmp_path / "out"))  # its indexes still say: in the old pack
    assert {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()} == kept
    art.verify(root)
    assert reader.pack_indexes.locate([some_chunk])[some_chunk].pack == report.new_packs[0]


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_a_copy_whose_source_indexes_are_stale_still_copies(store_url: str, tmp_path: Path,
                                                           request: pytest.FixtureRequest,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.endpoints import open_side

    kept, (pack,) = _mostly_dead(store_url, request, monkeypatch, live=3)
    source = open_side(store_url)  # the store ``registry copy`` reads from, in this process
    source.pack_indexes.load([pack])
    assert collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0).repacked == [pack]
    local = str(tmp_path / "copy")
    registry.copy_store(store_url, local, projects=["proj"])
    monkeypatch.setenv("REGISTRY_URL", local)
    assert _download(local, tmp_path, "proj/keep:v0", "reader") == kept


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_a_writer_that_found_chunks_in_a_pack_repacked_under_it_ends_with_every_chunk(
        store_url: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer finds two files in the old pack: one live (keep holds it: gc copies it to the
    new pack) and one dead (its version was deleted: gc drops it). A collector on another
    machine repacks between the writer's look-up and its marker naming the pack; after the
    commit the writer must find the first in the new pack and send the second again."""
    import registry.publish as publish

    kept, (pack,) = _mostly_dead(store_url, request, monkeypatch, live=3)
    dead = next(iter(DEAD.values()))
    live = next(iter(kept.values()))
    collections = []
    real_plan = publish.plan_chunks

    def plan_then_collect(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        assert plan.relied_packs == {pack}
        collections.append(collect_garbage(_machine(tmp_path, "gc"), grace_seconds=0))
        return plan

    monkeypatch.setattr(publish, "plan_chunks", plan_then_collect)
    files = {"live.bin": live, "dead.bin": dead, "new.bin": os.urandom(SIZE)}
    logged = log_files("writer", files)
    assert collections[0].repacked == [pack]
    assert not open_store().backend.exists(keys.pack(pack))
    held = holdings(open_store().backend)
    assert all(sha256_bytes(data) in held for data in files.values())
    assert _download(store_url, tmp_path, f"proj/writer:{logged.version}", "reader") == files
    assert _download(store_url, tmp_path, "proj/keep:v0", "reader-keep") == kept


# -- a collector killed midway ----------------------------------------------------------------
KILL_POINTS = {"before-old-pack-delete": keys.packs_prefix(), "before-old-index-delete": keys.pack_index_prefix()}
"""Where the collector is killed -> the prefix of the first deletion it does not make."""


def collector(point: str) -> None:
    """A gc that stops for good at ``point``: once its new packs are stored, just before its first
    deletion of an old pack (or of an old pack's index)."""
    store = open_store()
    real_write, real_delete = store.backend.write, store.backend.delete
    new_packs: list[str] = []

    def write(key: str, *args, **kwargs):
        if key.startswith(keys.packs_prefix()):
            new_packs.append(key)
        return real_write(key, *args, **kwargs)

    def delete(key: str) -> None:
        if new_packs and key.startswith(KILL_POINTS[point]):
            print(f"PAUSED {point}", flush=True)
            time.sleep(3600)
        real_delete(key)

    store.backend.write, store.backend.delete = write, delete  # type: ignore[method-assign]
    collect_garbage(store, grace_seconds=0)


@pytest.mark.parametrize("point", list(KILL_POINTS))
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_a_collector_killed_midway_leaves_a_readable_store_and_the_next_finishes(
        store_url: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
        point: str) -> None:
    kept, (old,) = _mostly_dead(store_url, request, monkeypatch, live=3)
    proc = subprocess.Popen([sys.executable, __file__, "gc", point],
                            env=subprocess_env(store_url, tmp_path / "cache-killed"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when_paused(proc, point)
    assert proc.returncode == -signal.SIGKILL
    store = _machine(tmp_path, "gc")
    (new,) = set(pack_contents(store.backend)) - {old}  # stored, with its index
    assert store.backend.exists(keys.pack(new))
    assert store.backend.exists(keys.pack(old)) == (point == "before-old-pack-delete")
    assert _download(store_url, tmp_path, "proj/keep:v0", "reader-midway") == kept  # the old index still listed
    collect_garbage(store, grace_seconds=0)
    assert pack_contents(store.backend) == {new: frozenset(sha256_bytes(b) for b in kept.values())}
    assert {info.key for info in store.backend.list(keys.packs_prefix())} == {keys.pack(new)}
    assert _download(store_url, tmp_path, "proj/keep:v0", "reader-after") == kept


# -- everything at once ----------------------------------------------------------------------
WRITERS, VERSIONS, UNIQUE, KEEP_BEHIND, BUDGET_SECONDS = 2, 6, 6, 2, 60


def writer(writer_id: str, count: int) -> None:
    """Logs ``count`` versions of ``proj/w<id>``: a file shared by everyone, UNIQUE new files, and
    one file of the version before (found in that version's pack, which is mostly dead once the
    version is deleted); deletes each version KEEP_BEHIND versions old."""
    api = registry.Api()
    carried = b""
    for n in range(count):
        files = {"shared.bin": b"in every version of every writer\n" * 50, "carried.bin": carried}
        files.update({f"u{k}.bin": os.urandom(SIZE) for k in range(UNIQUE)})
        logged = log_files(f"w{writer_id}", files)
        print(json.dumps({"version": logged.version, "files": {p: sha256_bytes(d) for p, d in files.items()}}),
              flush=True)
        carried = files["u0.bin"]
        if n >= KEEP_BEHIND:
            api.artifact(f"proj/w{writer_id}:v{n - KEEP_BEHIND}").delete()


def reader(stop_file: str) -> None:
    """Pulls each writer's latest version again and again, with one long-lived store whose pack
    indexes go stale as gc rewrites packs (its cache and its pulls removed after each, so every
    pull reads the store); prints how many pulls succeeded. A pull fails only if its version was deleted
    meanwhile."""
    api, pulls, n = registry.Api(), 0, 0
    refreshes = []
    real_refresh = api.store.pack_indexes.refresh
    api.store.pack_indexes.refresh = lambda gone: (refreshes.append(gone), real_refresh(gone))  # type: ignore[method-assign]
    while not Path(stop_file).exists():
        for w in range(WRITERS):
            try:
                art = api.artifact(f"proj/w{w}:latest")
            except registry.NotFoundError:
                continue
            n += 1
            try:
                root = art.download(Path(stop_file).parent / f"pull-{n}")
                art.verify(root)
                pulls += 1
                shutil.rmtree(root)  # every pull reads its chunks from the store again:
                api.store.cache.clean(0)  # no copy on this machine to take them from
            except registry.NotFoundError:
                if art.version in [a.version for a in api.artifact_versions(f"proj/w{w}")]:
                    raise
    print(json.dumps({"pulls": pulls, "refreshes": len(refreshes)}), flush=True)


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_gc_repacking_in_a_loop_beside_writers_and_readers_loses_nothing(store_url: str, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    store = open_store(store_url)
    store.check_writable()
    stop = tmp_path / "reader" / "stop"
    stop.parent.mkdir()
    run = [sys.executable, __file__]
    writers = [subprocess.Popen([*run, "writer", str(i), str(VERSIONS)], env=subprocess_env(store_url, tmp_path / f"cache-w{i}"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(WRITERS)]
    pull = subprocess.Popen([*run, "reader", str(stop)], env=subprocess_env(store_url, tmp_path / "cache-r"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started, repacked = time.monotonic(), 0
    try:
        while any(p.poll() is None for p in writers) and time.monotonic() - started < BUDGET_SECONDS:
            repacked += len(collect_garbage(store, grace_seconds=0).repacked)
            time.sleep(0.05)
        repacked += len(collect_garbage(store, grace_seconds=0).repacked)  # once more, everyone done
        stop.touch()
        pulled = pull.communicate(timeout=120)
    finally:
        for p in [*writers, pull]:
            if p.poll() is None:
                p.kill()
    outputs = [p.communicate(timeout=30) for p in writers]
    for p, (_, err) in zip(writers, outputs):
        assert p.returncode == 0, err[-3000:]
    assert pull.returncode == 0, pulled[1][-3000:]
    reads = json.loads(pulled[0].splitlines()[-1])
    with capsys.disabled():
        print(f"\n[test_gc_repack] {repacked} packs rewritten beside {WRITERS} writers; the reader pulled "
              f"{reads['pulls']} times and refreshed stale indexes {reads['refreshes']} times")
    assert reads["pulls"] > 0
    assert repacked > 0  # the loop did rewrite packs while the others ran
    for w, (out, _) in enumerate(outputs):
        logged = {r["version"]: r["files"] for r in map(json.loads, out.splitlines())}
        live = registry.Api(store=_machine(tmp_path, f"check-{w}")).artifact_versions(f"proj/w{w}")
        assert [a.version for a in live] == [f"v{n}" for n in range(VERSIONS - KEEP_BEHIND, VERSIONS)]
        for art in live:
            files = _download(store_url, tmp_path, f"proj/w{w}:{art.version}", f"final-{w}-{art.version}")
            assert {p: sha256_bytes(d) for p, d in files.items()} == logged[art.version]


# -- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", BACKENDS, indirect=True)
def test_registry_gc_rewrites_and_the_store_passes_registry_verify(store_url: str, tmp_path: Path,
                                                                   request: pytest.FixtureRequest,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    kept, (pack,) = _mostly_dead(store_url, request, monkeypatch, live=3)
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "cache-cli"))

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, list(args), prog_name="registry")
        assert result.exit_code == 0, result.output
        return result.output

    dry = json.loads(run("gc", "--grace", "0s", "--dry-run", "--json"))
    assert dry["repacked"] == [pack] and dry["rewritten_bytes"] == 3 * SIZE and dry["new_packs"] == []
    assert open_store().backend.exists(keys.pack(pack))
    assert "rewrote 1 mostly-dead pack(s), copying" in run("gc", "--grace", "0s")
    assert not open_store().backend.exists(keys.pack(pack))
    out = tmp_path / "pulled"
    run("pull", "proj/keep:v0", "-d", str(out))
    run("verify", "proj/keep:v0", str(out))
    assert {f"a0/{p.name}": p.read_bytes() for p in (out / "a0").iterdir()} == kept


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "gc":
    collector(sys.argv[2])
if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "writer":
    writer(sys.argv[2], int(sys.argv[3]))
if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "reader":
    reader(sys.argv[2])
