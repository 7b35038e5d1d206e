"""Garbage collection: only unreferenced blobs older than the grace go, even beside running writers.

The concurrent test runs ``collect_garbage`` in a tight loop with no grace at all while four
writer processes log versions whose blobs are shared between writers and versions, and
whose contents include blobs that sat unreferenced in the store (as a crashed writer leaves
them) just before being logged -- the case where a writer finds a blob instead of uploading
it and a collector may remove it in between. Every version that exists at the end must
download and verify.

Run as ``python test_gc.py worker WRITER COUNT`` this file is that writer process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import registry
from backends import open_backend
from helpers import log_files, print_past_capture
from registry import keys
from registry.gc import collect_garbage
from registry.hashing import sha256_bytes
from registry.protection import MARKER_LEASE_SECONDS
from registry.records import InflightMarker, now
from registry.store import open_store
from store_contents import content_keys, gc_units, with_indexes

COUNTS = {"versions": 0, "processes": 0, "gc_passes": 0, "gc_deleted": 0}


@pytest.fixture(scope="module", autouse=True)
def report_counts(request: pytest.FixtureRequest):
    yield
    print_past_capture(request, f"[test_gc] totals: {COUNTS}")


def sha(data: bytes) -> str:
    return sha256_bytes(data)


def age(store_url: str, keys_: list[str], seconds: float) -> None:
    """Make objects look ``seconds`` old (local store: by mtime)."""
    backend = open_backend(store_url)
    then = time.time() - seconds
    for key in keys_:
        os.utime(backend.local_path(key), (then, then))


def build_store(store_url: str, tmp_path: Path) -> dict[str, str]:
    """Two versions, a run file and a logged image: every kind of reference gc must honour."""
    import numpy as np

    saved = tmp_path / "notes.txt"
    saved.write_text("kept with the run\n")
    with registry.init(project="proj", job_type="build") as run:
        for files in ({"a.txt": b"alpha", "b.txt": b"bravo"}, {"a.txt": b"alpha", "c.txt": b"charlie"}):
            art = registry.Artifact("data", type="dataset")
            for path, data in files.items():
                with art.new_file(path, mode="wb") as f:
                    f.write(data)
            run.log_artifact(art)
        run.save(saved, base_path=tmp_path)
        image = registry.Image(np.zeros((4, 4, 3), dtype=np.uint8))
        run.log({"img": image})
    return {"image": sha(image.png), "saved": sha(saved.read_bytes())}


def blob_keys(store_url: str) -> set[str]:
    return {info.key for info in open_backend(store_url).list(keys.blob_prefix())}


def all_versions_verify(store_url: str, tmp_path: Path, monkeypatch, project: str = "proj", name: str = "data") -> int:
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "cache-verifier"))  # fetch everything afresh
    versions = registry.Api(store_url).artifact_versions(f"{project}/{name}")
    for art in versions:
        art.verify(art.download(tmp_path / "verify" / art.version))
    return len(versions)


# -- what is deleted -------------------------------------------------------------------------
@pytest.mark.parametrize("store_url", ["local", "moto"], indirect=True)
def test_gc_deletes_only_unreferenced_blobs_older_than_the_grace(store_url: str, tmp_path: Path, monkeypatch) -> None:
    extra = build_store(store_url, tmp_path)
    store = open_store(store_url)
    referenced = gc_units(store_url)  # loose blobs, and (format 2 on S3) the packs holding the files
    assert {keys.blob(extra["image"]), keys.blob(extra["saved"])} <= referenced
    assert content_keys(store_url) == with_indexes(referenced)
    old = [keys.blob(store.blobs.put_bytes(f"old orphan {i}".encode())) for i in range(3)]
    if store_url.startswith("s3://"):
        time.sleep(3.2)  # S3 stamps objects itself: really let them grow old
        grace = 2.0
    else:
        age(store_url, old, 3600)
        grace = 60.0
    young = keys.blob(store.blobs.put_bytes(b"young orphan"))
    report = collect_garbage(store, grace_seconds=grace)
    assert sorted(report.deleted) == sorted(old)
    assert report.freed_bytes == sum(len(f"old orphan {i}") for i in range(3))
    assert report.kept_young == 1 and report.referenced == len(referenced)
    assert gc_units(store_url) == referenced | {young}
    assert content_keys(store_url) == with_indexes(referenced) | {young}  # every pack kept its index
    assert all_versions_verify(store_url, tmp_path, monkeypatch) == 2
    run = registry.Api(store_url).runs("proj")[0]
    assert [f.path for f in run.files()] == ["notes.txt"]
    assert run.history()[0]["img"]["sha256"] == extra["image"]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_dry_run_deletes_nothing(store_url: str, tmp_path: Path) -> None:
    build_store(store_url, tmp_path)
    store = open_store(store_url)
    old = [keys.blob(store.blobs.put_bytes(f"orphan {i}".encode())) for i in range(2)]
    age(store_url, old, 3600)
    before = blob_keys(store_url)
    dry = collect_garbage(store, grace_seconds=60, dry_run=True)
    assert dry.dry_run and sorted(dry.deleted) == sorted(old)
    assert blob_keys(store_url) == before
    real = collect_garbage(store, grace_seconds=60)
    assert sorted(real.deleted) == sorted(dry.deleted)
    assert blob_keys(store_url) == before - set(old)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_grace_zero_still_keeps_everything_referenced(store_url: str, tmp_path: Path, monkeypatch) -> None:
    build_store(store_url, tmp_path)
    referenced = blob_keys(store_url)
    collect_garbage(open_store(store_url), grace_seconds=0)
    assert blob_keys(store_url) == referenced
    assert all_versions_verify(store_url, tmp_path, monkeypatch) == 2


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_in_flight_marker_protects_until_its_lease_expires(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    orphan = store.blobs.put_bytes(b"a blob a running writer relies on")
    age(store_url, [keys.blob(orphan)], 3600)
    marker = keys.inflight("writer-under-test")
    store.backend.write(marker, InflightMarker(started_at=now(), blobs=[orphan]).to_bytes())
    report = collect_garbage(store, grace_seconds=60)
    assert report.deleted == [] and report.kept_in_flight == 1
    age(store_url, [marker], MARKER_LEASE_SECONDS + 60)  # the writer died long ago
    report = collect_garbage(store, grace_seconds=60)
    assert report.deleted == [keys.blob(orphan)]
    assert not store.backend.exists(marker)


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_gc_deletes_nothing_when_a_version_record_is_malformed(store_url: str, tmp_path: Path) -> None:
    """Unsure what is referenced, gc must stop rather than guess."""
    build_store(store_url, tmp_path)
    store = open_store(store_url)
    orphan = keys.blob(store.blobs.put_bytes(b"orphan"))
    age(store_url, [orphan], 3600)
    before = blob_keys(store_url)
    store.backend.write(keys.version("proj", "data", 1), b"{garbage")
    with pytest.raises(registry.IntegrityError, match=keys.version("proj", "data", 1)):
        collect_garbage(store, grace_seconds=0)
    assert blob_keys(store_url) == before
    assert list(store.backend.list(keys.gc_lock_prefix())) == []  # its lock is gone with it


@pytest.mark.parametrize("found_in", ["loose blob", "dead pack"])
@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_a_collection_between_finding_and_naming_loses_nothing(store_url: str, tmp_path: Path, monkeypatch,
                                                               found_in: str) -> None:
    """A writer finds some bytes in the store that nothing references (a crashed writer's blob,
    a deleted version's pack), and a collector takes them before the writer's marker names them:
    once committed, the writer must notice and send them again (format 2 on S3)."""
    import registry.publish as publish

    store = open_store(store_url)
    orphan = b"found in the store, unreferenced\n"
    if found_in == "loose blob":
        taken = keys.blob(store.blobs.put_bytes(orphan))
    else:
        dead = log_files("crashed", {"x.txt": orphan})
        (pack,) = dead.record.packs or ()
        taken = keys.pack(pack)
        dead.delete()
    collections = []
    real_plan = publish.plan_chunks

    def plan_then_collect(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        collections.append(collect_garbage(store, grace_seconds=0))  # before the marker names what was found
        return plan

    monkeypatch.setattr(publish, "plan_chunks", plan_then_collect)
    files = {"found.txt": orphan, "new.txt": b"uploaded by the writer\n"}
    logged = log_files("data", files)
    assert taken in collections[0].deleted
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "cache-reader"))
    art = registry.Api(store_url).artifact(f"proj/data:{logged.version}")
    root = Path(art.download(tmp_path / "out"))
    assert {p.name: p.read_bytes() for p in root.iterdir()} == files


# -- gc beside running writers ---------------------------------------------------------------
WRITERS, CALLS, BUDGET_SECONDS = 4, 6, 40
STARVATION_BUDGET = 10
PAUSE_BETWEEN_PASSES = 0.05  # strictly back-to-back collections starve writers: see the next test


def worker(writer: str, count: int) -> None:
    store = open_store()
    with registry.init(project="gc", job_type="writer") as run:
        for i in range(count):
            orphan = f"left behind, then logged: {i}\n".encode()  # the same for every writer
            store.blobs.put_bytes(orphan)  # unreferenced until some version holds it
            time.sleep(0.05 + 0.1 * ((i + int(writer)) % 4))  # let a collector find it unreferenced, sometimes
            art = registry.Artifact("data", type="dataset")
            for path, data in {
                "shared.txt": b"in every version\n",
                "pool.txt": f"one of three: {i % 3}\n".encode(),
                "orphan.txt": orphan,
                "payload.txt": f"writer {writer} call {i}\n".encode(),
            }.items():
                with art.new_file(path, mode="wb") as f:
                    f.write(data)
            logged = run.log_artifact(art)
            print(json.dumps({"version": logged.version, "commit_id": logged.commit_id}), flush=True)


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_gc_in_a_loop_beside_writers_sharing_blobs(store_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from store_fixtures import subprocess_env

    store = open_store(store_url)
    store.check_writable()
    procs = [
        subprocess.Popen([sys.executable, __file__, "worker", str(i), str(CALLS)], env=subprocess_env(store_url, tmp_path / f"cache-{i}"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(WRITERS)
    ]
    COUNTS["processes"] += WRITERS
    started, passes, deleted, overtime = time.monotonic(), 0, 0, False
    try:
        while any(p.poll() is None for p in procs):
            if time.monotonic() - started > BUDGET_SECONDS:
                overtime = True
                break
            report = collect_garbage(store, grace_seconds=0)
            passes += 1
            deleted += len(report.deleted)
            time.sleep(PAUSE_BETWEEN_PASSES)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outputs = [p.communicate(timeout=30) for p in procs]
    results = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    if overtime:
        committed = len(registry.Api(store_url).artifact_versions("gc/data"))
        pytest.fail(f"writers did not finish within {BUDGET_SECONDS}s beside a collector running in a loop ({passes} passes): "
                    f"{committed} versions committed but only {len(results)} log calls returned -- writers wait after "
                    "committing until no collector is running, and one always is")
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    COUNTS["gc_passes"] += passes
    COUNTS["gc_deleted"] += deleted
    with capsys.disabled():
        print(f"\n[test_gc] {'seaweed' if store_url.startswith('s3://') else 'local'}: {passes} gc passes deleted {deleted} blobs beside "
              f"{WRITERS} writers ({len(results)} versions) in {time.monotonic() - started:.1f}s")
    assert passes >= 3
    collect_garbage(store, grace_seconds=0)  # and once more after everyone finished
    api = registry.Api(store_url)
    versions = api.artifact_versions("gc/data")
    COUNTS["versions"] += len(versions)
    assert [int(a.version[1:]) for a in versions] == list(range(WRITERS * CALLS))
    by_version = {a.version: a.commit_id for a in versions}
    assert sorted(r["version"] for r in results) == sorted(by_version)
    assert all(by_version[r["version"]] == r["commit_id"] for r in results)
    assert all_versions_verify(store_url, tmp_path, monkeypatch, project="gc") == WRITERS * CALLS


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_a_writer_is_not_starved_by_back_to_back_collections(store_url: str, tmp_path: Path) -> None:
    """Collectors announced back to back, overlapping, so that one is always running (as with
    gc in a tight loop on a store where a pass takes longer than the writer's poll): a writer
    that found (rather than uploaded) a blob must still finish. Collectors that started after
    its commit see the committed version, so there is no need to wait for them."""
    import threading
    import uuid

    from registry.records import GcLock
    from store_fixtures import subprocess_env

    store = open_store(store_url)
    store.check_writable()
    stop = threading.Event()

    def announce() -> None:  # each "collection" runs 0.3 s; the next starts before it ends
        previous = None
        while not stop.is_set():
            lock = keys.gc_lock(uuid.uuid4().hex)
            store.backend.write(lock, GcLock(started_at=now()).to_bytes())
            if previous:
                store.backend.delete(previous)
            previous = lock
            stop.wait(0.3)
        if previous:
            store.backend.delete(previous)

    announcer = threading.Thread(target=announce, daemon=True)
    announcer.start()
    COUNTS["processes"] += 1
    try:
        proc = subprocess.run([sys.executable, __file__, "worker", "0", "2"], env=subprocess_env(store_url, tmp_path / "cache-w"),
                              capture_output=True, text=True, timeout=STARVATION_BUDGET)
    except subprocess.TimeoutExpired:
        committed = [a.version for a in registry.Api(store_url).artifact_versions("gc/data")]
        pytest.fail(f"the writer did not return within {STARVATION_BUDGET}s while collectors ran back to back (committed: {committed})")
    finally:
        stop.set()
        announcer.join(timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [json.loads(line)["version"] for line in proc.stdout.splitlines()] == ["v0", "v1"]


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "worker":
    worker(sys.argv[2], int(sys.argv[3]))
