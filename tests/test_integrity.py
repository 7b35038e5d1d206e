"""What is written is what was hashed, gc never takes a blob a writer still needs, alias removal is
conditional.

* Uploads: a file that changes after it was added -- before its upload, or while it runs, in a
  single PUT or in parts, or while it is read into a pack -- is refused with ``IntegrityError``
  naming it; no version is made and no blob's, pack's or chunk's bytes ever differ from its name.
* gc protection: a writer that runs longer than the in-flight lease (lowered here to a couple
  of seconds) keeps its blobs, and so do files kept with ``run.save`` and logged images, with
  ``gc --grace 0`` running in a loop beside them.
* Aliases: removing an alias that another writer moved meanwhile is a conflict that keeps the
  move; the compare-and-swap loop pauses with jittered exponential backoff between attempts.
"""
from __future__ import annotations

import builtins
import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

import registry
import registry.protection as protection
from backends import PreconditionFailed, open_backend
from helpers import log_files
from registry import keys, pack_writer
from registry.gc import collect_garbage
from registry.packs import PackBuilder
from registry.settings import Settings
from registry.store import Store, open_store
from registry.versions import version_numbers
from store_fixtures import proxy_of, small_parts
from stored_bytes import holds_chunk, stored_bytes_match_their_names

PART = 5 * 1024 * 1024  # S3's smallest part
SIZES = {"single": 3 * 1024 * 1024 + 17, "parts": 2 * PART + 12345}  # both span several local copy chunks


# -- helpers ---------------------------------------------------------------------------------
def nothing_in_flight(store_url: str) -> bool:
    return list(open_backend(store_url).list(keys.inflight_prefix())) == []


def in_parts(monkeypatch: pytest.MonkeyPatch, size_kind: str) -> None:
    """Make S3 uploads of the "parts" size go through s3transfer's multipart upload."""
    if size_kind == "parts":
        small_parts(monkeypatch, PART)


def no_multipart_left(store_url: str) -> bool:
    if not store_url.startswith("s3://"):
        return True
    backend = open_store(store_url).backend
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    listed = client.list_multipart_uploads(Bucket=backend.bucket, Prefix=backend.prefix)
    return listed.get("Uploads", []) == []


def short_lease(monkeypatch: pytest.MonkeyPatch, lease: float = 3.0, refresh: float = 0.25) -> float:
    """Markers and gc locks expire after ``lease`` seconds unless refreshed (SeaweedFS stamps
    objects to the second, so a lease under 2 s would look expired while still fresh)."""
    monkeypatch.setattr(protection, "MARKER_LEASE_SECONDS", lease)
    monkeypatch.setattr(protection, "REFRESH_SECONDS", refresh)
    return lease


def collector_store(store_url: str, tmp_path: Path) -> Store:
    """A store object of its own (own cache) for a collector running in a thread."""
    return Store(Settings.from_env(store_url).model_copy(update={"cache_dir": tmp_path / "gc-cache"}))


@contextmanager
def gc_in_a_loop(store: Store) -> Iterator[dict]:
    """``gc --grace 0`` over and over in a thread while the block runs."""
    stop, state = threading.Event(), {"passes": 0, "deleted": 0, "errors": []}

    def loop() -> None:
        while not stop.is_set():
            try:
                state["deleted"] += len(collect_garbage(store, grace_seconds=0).deleted)
                state["passes"] += 1
            except Exception as e:  # reported below
                state["errors"].append(e)
            stop.wait(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=120)
    assert not state["errors"], state["errors"]


def backend_class(store_url: str) -> type:
    return type(open_backend(store_url))


def all_versions_verify(store_url: str, tmp_path: Path, name: str) -> int:
    versions = registry.Api(store_url).artifact_versions(f"proj/{name}")
    for art in versions:
        art.verify(art.download(tmp_path / "verify" / art.version))
    return len(versions)


# -- 6. what is uploaded is what was hashed ----------------------------------------------------
@pytest.mark.parametrize("size_kind", list(SIZES))
def test_a_file_changed_after_it_was_added_is_refused_and_nothing_is_logged(
    store_url: str, size_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_parts(monkeypatch, size_kind)
    source = tmp_path / "weights.bin"
    original = os.urandom(SIZES[size_kind])
    source.write_bytes(original)
    with registry.init(project="proj", job_type="train") as run:
        art = registry.Artifact("model", type="model")
        art.add_file(source)
        with open(source, "r+b") as f:  # rewritten in place, same size, after it was hashed
            f.seek(len(original) // 2)
            f.write(b"changed")
        with pytest.raises(registry.IntegrityError, match=str(source)):
            run.log_artifact(art)
    backend = open_backend(store_url)
    assert version_numbers(backend, "proj", "model") == []
    assert not holds_chunk(store_url, hashlib.sha256(original).hexdigest())
    stored_bytes_match_their_names(store_url)
    assert nothing_in_flight(store_url) and no_multipart_left(store_url)

    art = log_files("model", {"weights.bin": source.read_bytes()})  # added again: logs
    assert art.version == "v0" and all_versions_verify(store_url, tmp_path, "model") == 1


@contextmanager
def rewritten_once_reading_starts(monkeypatch: pytest.MonkeyPatch, target: Path) -> Iterator[list[int]]:
    """The backends open ``target`` to upload it (or, in a store of packs, the writer reads it
    into its packs once their upload has begun); as the upload first reads from it, the second
    half of the file is rewritten in place, as if a program were still writing it."""
    import backends.local
    import backends.s3
    import backends.s3_obstore
    import registry.chunk_upload
    import registry.chunking

    real_open, rewrites, packing = builtins.open, [], []

    class Rewritten:
        def __init__(self, file) -> None:
            self.file = file

        def read(self, *args) -> bytes:
            self.rewrite_once()
            return self.file.read(*args)

        def readinto(self, buffer) -> int:
            self.rewrite_once()
            return self.file.readinto(buffer)

        def rewrite_once(self) -> None:
            if not rewrites:
                size = os.path.getsize(target)
                rewrites.append(size)
                with real_open(target, "r+b") as f:
                    f.seek(size // 2)
                    f.write(os.urandom(size - size // 2))

        def __getattr__(self, name: str):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.close()

    def fake_open(path, mode="r", *args, **kwargs):
        file = real_open(path, mode, *args, **kwargs)
        return Rewritten(file) if "r" in mode and Path(path) == target else file

    def packing_open(path, *args, **kwargs):  # not the reads that cut the file into chunks
        return fake_open(path, *args, **kwargs) if packing else real_open(path, *args, **kwargs)

    real_enter = pack_writer.PackUploader.__enter__

    def enter(self):
        packing.append(self)
        return real_enter(self)

    for module in (backends.local, backends.s3, backends.s3_obstore):
        monkeypatch.setattr(module, "open", fake_open, raising=False)
    for module in (registry.chunking, registry.chunk_upload):
        monkeypatch.setattr(module, "open", packing_open, raising=False)
    monkeypatch.setattr(pack_writer.PackUploader, "__enter__", enter)
    yield rewrites


@pytest.mark.parametrize("size_kind", list(SIZES))
def test_a_file_rewritten_while_its_upload_runs_is_refused(
    store_url: str, size_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single PUT: the server refuses the checksum (SeaweedFS), or the registry hashes what was
    sent and takes the object back (moto ignores checksums). Parts: hashed in order as read,
    refused before the upload completes. Local: hashed while copied, refused before the rename.
    Packs (format 2 on S3): each chunk hashed as it is read into its pack, refused before the
    pack is sent."""
    in_parts(monkeypatch, size_kind)
    source = tmp_path / "weights.bin"
    original = os.urandom(SIZES[size_kind])
    source.write_bytes(original)
    registry.Api(store_url).store.check_writable()  # the probe's writes are not the upload under test
    with registry.init(project="proj", job_type="train") as run:
        art = registry.Artifact("model", type="model")
        art.add_file(source)
        with rewritten_once_reading_starts(monkeypatch, source) as rewrites, pytest.raises(registry.IntegrityError, match=str(source)):
            run.log_artifact(art)
        assert rewrites, "the upload never read the file"
    backend = open_backend(store_url)
    assert version_numbers(backend, "proj", "model") == []
    assert not holds_chunk(store_url, hashlib.sha256(original).hexdigest())
    stored_bytes_match_their_names(store_url)
    assert nothing_in_flight(store_url) and no_multipart_left(store_url)


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_a_file_rewritten_over_and_over_while_logging_never_yields_a_wrong_blob(store_url: str, tmp_path: Path) -> None:
    """A thread keeps rewriting the file in place (torn states included) while it is added and
    logged again and again: each log either refuses or stores bytes that match their key."""
    source = tmp_path / "live.bin"
    size = 2 * 1024 * 1024 + 5
    source.write_bytes(os.urandom(size))
    stop = threading.Event()

    def rewrite() -> None:
        rng = random.Random(7)
        with open(source, "r+b", buffering=0) as f:
            while not stop.is_set():
                f.seek(rng.randrange(size - 4096))
                f.write(rng.randbytes(4096))
                time.sleep(0.0005)

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    logged = refused = 0
    try:
        with registry.init(project="proj", job_type="train") as run:
            for _ in range(12):
                art = registry.Artifact("live", type="dataset")
                art.add_file(source)
                try:
                    run.log_artifact(art)
                    logged += 1
                except registry.IntegrityError as e:
                    assert str(source) in str(e)
                    refused += 1
    finally:
        stop.set()
        writer.join()
    print(f"\n[test_integrity] rewritten while logging: {logged} logged, {refused} refused")
    assert logged + refused == 12
    stored_bytes_match_their_names(store_url)
    if logged:
        assert all_versions_verify(store_url, tmp_path, "live") >= 1


# -- 7. everything written is under gc protection, for as long as its writer runs --------------
def slow_upload(monkeypatch: pytest.MonkeyPatch, store_url: str, data: bytes, seconds: float) -> None:
    """The upload of the file holding ``data`` takes ``seconds`` (a huge file on a slow link):
    its blob, or in a store of packs the pack holding it (each file gets a pack of its own)."""
    cls = backend_class(store_url)
    real_write_file, real_write = cls.write_file, cls.write
    sha = hashlib.sha256(data).hexdigest()

    def write_file(self, key, path, sha256=None, progress=None):
        if key == keys.blob(sha):
            time.sleep(seconds)
        return real_write_file(self, key, path, sha256=sha256, progress=progress)

    def write(self, key, body, sha256=None):
        if key.startswith(keys.packs_prefix()) and data in bytes(body):  # a pack is a memoryview
            time.sleep(seconds)
        return real_write(self, key, body, sha256=sha256)

    monkeypatch.setattr(cls, "write_file", write_file)
    monkeypatch.setattr(cls, "write", write)
    monkeypatch.setattr(pack_writer, "PackBuilder", lambda: PackBuilder(1))


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_a_writer_outliving_the_lease_keeps_its_blobs(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One file uploads at once, the other takes three leases: the first blob (or pack) sits
    unreferenced all that time, and only the refreshed marker keeps the looping collector away
    from it."""
    lease = short_lease(monkeypatch)
    slow = b"the large file\n" * 1000
    slow_upload(monkeypatch, store_url, slow, 3 * lease)
    open_store(store_url).check_writable()
    with gc_in_a_loop(collector_store(store_url, tmp_path)) as gc_state:
        log_files("data", {"quick.txt": b"uploaded at once, needed at the end\n", "slow.bin": slow})
    assert gc_state["passes"] >= 5 and gc_state["deleted"] == 0  # kept all along, not taken and put back
    assert all_versions_verify(store_url, tmp_path, "data") == 1
    assert nothing_in_flight(store_url)


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_a_lapsed_lease_makes_the_writer_check_every_blob_again(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the marker could not be refreshed in time (here: every refresh fails), the collector may
    take even blobs (or packs) the writer uploaded; the writer notices the lapse and uploads them
    again after its commit."""
    from backends import StorageUnavailable

    lease = short_lease(monkeypatch, lease=3.0)  # 2 s let a busy CI machine's gc lock look expired mid-pass
    slow = b"the large file\n" * 1000
    slow_upload(monkeypatch, store_url, slow, 3 * lease)
    cls = backend_class(store_url)
    real_write = cls.write

    def write(self, key, data, sha256=None):  # the writer's own rewrites (naming more) still work
        if key.startswith(keys.inflight_prefix()) and threading.current_thread().name.startswith("registry-lease-"):
            raise StorageUnavailable(f"{key}: the store is unreachable (injected)")
        return real_write(self, key, data, sha256=sha256)

    monkeypatch.setattr(cls, "write", write)
    open_store(store_url).check_writable()
    with gc_in_a_loop(collector_store(store_url, tmp_path)) as gc_state:
        log_files("data", {"quick.txt": b"uploaded at once, needed at the end\n", "slow.bin": slow})
    assert gc_state["deleted"] >= 1  # it did take the quick blob (or pack) while the writer was uploading
    assert all_versions_verify(store_url, tmp_path, "data") == 1


@pytest.mark.parametrize("store_url", ["moto", "seaweed"], indirect=True)
def test_a_pack_uploaded_while_a_collector_runs_is_kept(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A collector reads the markers for the last time; only then does a writer name a new pack
    in its marker and upload it; then the collector looks at the packs. It must not take the
    pack, even with its clock a few seconds ahead of the store's (so "younger than the run"
    protects nothing): packs are listed before the markers are read, as blobs are."""
    import registry.gc as gc_module

    open_store(store_url).check_writable()
    last_markers_read, uploaded, collected = threading.Event(), threading.Event(), threading.Event()
    real_markers, real_time, calls = gc_module.live_markers, time.time, []

    def live_markers(backend, now_ts, remove_expired=True):
        found = real_markers(backend, now_ts, remove_expired)
        calls.append(now_ts)
        if len(calls) == 2:
            last_markers_read.set()
            uploaded.wait(60)
        return found

    real_finish = pack_writer.PackUploader.finish

    def finish_then_wait(self):  # the packs are uploaded; no record names them yet
        real_finish(self)
        if not uploaded.is_set():
            uploaded.set()
            collected.wait(60)

    monkeypatch.setattr(gc_module, "live_markers", live_markers)
    monkeypatch.setattr(gc_module, "time", SimpleNamespace(time=lambda: real_time() + 5))
    monkeypatch.setattr(pack_writer.PackUploader, "finish", finish_then_wait)
    reports: list = []

    def collect() -> None:
        try:
            reports.append(collect_garbage(collector_store(store_url, tmp_path), grace_seconds=0))
        finally:
            collected.set()

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    assert last_markers_read.wait(60)
    art = log_files("data", {"a.txt": b"packed while a collector ran\n"})
    collector.join(60)
    assert reports and art.record.packs, "the collector failed, or nothing was packed"
    assert not [k for k in reports[0].deleted if k.startswith((keys.packs_prefix(), keys.pack_index_prefix()))]
    assert all_versions_verify(store_url, tmp_path, "data") == 1
    assert nothing_in_flight(store_url)


def collect_before_writing(monkeypatch: pytest.MonkeyPatch, store_url: str, store: Store, suffix: str, done: list[int]) -> None:
    """Run a whole ``gc --grace 0`` just before the first write of a key ending in ``suffix``:
    the moment the blobs exist but nothing references them yet."""
    cls = backend_class(store_url)
    real = cls.write

    def write(self, key, data, sha256=None):
        if key.endswith(suffix) and not done:
            done.append(len(collect_garbage(store, grace_seconds=0).deleted))
        return real(self, key, data, sha256=sha256)

    monkeypatch.setattr(cls, "write", write)


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_saved_run_files_are_protected_until_the_run_record_names_them(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short_lease(monkeypatch)
    store = open_store(store_url)
    store.check_writable()
    found = b"these bytes were already in the store, unreferenced\n"
    store.blobs.put_bytes(found)  # as a crashed writer leaves them: the save finds, not uploads, this blob
    (tmp_path / "found.txt").write_bytes(found)
    (tmp_path / "new.txt").write_bytes(b"uploaded by the save\n")
    collected: list[int] = [0]  # disarmed until the run has started
    collect_before_writing(monkeypatch, store_url, collector_store(store_url, tmp_path), "/run.json", collected)
    with registry.init(project="proj", job_type="train") as run:
        collected.clear()  # armed: a collection runs just before the save's run record names the found blob
        run.save(tmp_path / "found.txt", base_path=tmp_path)
        with gc_in_a_loop(collector_store(store_url, tmp_path)) as gc_state:
            for i in range(3):
                (tmp_path / "new.txt").write_bytes(f"uploaded by save {i}\n".encode())
                run.save(tmp_path / "new.txt", base_path=tmp_path)
                time.sleep(1.0)
    assert collected == [0] and gc_state["passes"] >= 5
    api_run = registry.Api(store_url).run(run.path)
    for entry in api_run.record.files:
        assert store.backend.exists(keys.blob(entry.sha256)), entry.path
    stored_bytes_match_their_names(store_url)
    assert nothing_in_flight(store_url)


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_logged_images_are_protected_until_their_history_is_written(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Images are stored when logged but referenced only when the history is flushed, which
    here comes three leases later, with collectors looping and one running just before the flush."""
    import numpy as np

    lease = short_lease(monkeypatch)
    store = open_store(store_url)
    store.check_writable()
    images = [registry.Image(np.full((4, 4, 3), i, dtype=np.uint8)) for i in range(3)]
    store.blobs.put_bytes(images[0].png)  # already in the store, unreferenced: found, not uploaded
    collected: list[int] = [0]  # disarmed until the run has started
    collect_before_writing(monkeypatch, store_url, collector_store(store_url, tmp_path), ".jsonl", collected)
    with registry.init(project="proj", job_type="train") as run:
        collected.clear()  # armed: a collection runs just before the history chunk is written
        run.log({"sample": images[0]})
        with gc_in_a_loop(collector_store(store_url, tmp_path)) as gc_state:
            run.log({"samples": images[1:]})
            time.sleep(3 * lease)
            run.finish()  # flushes the history
    assert collected == [0] and gc_state["passes"] >= 5 and gc_state["deleted"] == 0  # kept all along
    shas = {hashlib.sha256(image.png).hexdigest() for image in images}
    history = registry.Api(store_url).run(run.path).history()
    assert {history[0]["sample"]["sha256"], *(i["sha256"] for i in history[1]["samples"])} == shas
    for sha in shas:
        assert store.blobs.read(sha)  # present, and verified against its hash
    assert nothing_in_flight(store_url)


# -- 8. alias removal is conditional; compare-and-swap backs off --------------------------------
def between_read_and_delete(monkeypatch: pytest.MonkeyPatch, store_url: str, alias_key: str, action) -> None:
    """Run ``action`` once, right after the remover read the alias (before it deletes it)."""
    cls = backend_class(store_url)
    real = cls.read_with_token
    state = {"armed": True}

    def read_with_token(self, key):
        result = real(self, key)
        if key == alias_key and state["armed"]:
            state["armed"] = False
            action()
        return result

    monkeypatch.setattr(cls, "read_with_token", read_with_token)


def test_removing_an_alias_moved_meanwhile_is_a_conflict_and_keeps_the_move(
    store_url: str, api: registry.Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_files("model", {"w": b"1"}, aliases=["best"])
    log_files("model", {"w": b"2"})
    api.store.check_writable()
    mover = registry.Api(store_url)
    between_read_and_delete(monkeypatch, store_url, keys.alias("proj", "model", "best"),
                            lambda: mover.set_alias("proj/model:v1", "best", expected_version=0))
    with pytest.raises(registry.ConflictError, match=r"'best' of proj/model was moved to v1"):
        api.remove_alias("proj/model", "best")
    assert api.artifact("proj/model:best").version == "v1"  # the concurrent move won


def test_removing_an_alias_removed_meanwhile_succeeds(store_url: str, api: registry.Api, monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("model", {"w": b"1"}, aliases=["best"])
    api.store.check_writable()
    key = keys.alias("proj", "model", "best")
    between_read_and_delete(monkeypatch, store_url, key, lambda: open_backend(store_url).delete(key))
    api.remove_alias("proj/model", "best")
    with pytest.raises(registry.NotFoundError):
        api.artifact("proj/model:best")


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_lost_response_to_a_conditional_alias_removal_through_obstore(store_url: str, api: registry.Api) -> None:
    """The same, on the default engine: the proxy forwards the DELETE, then drops the answer."""
    log_files("model", {"w": b"1"}, aliases=["best"])
    api.store.check_writable()
    proxy = proxy_of(store_url)
    proxy.rule = lambda r: "lost" if r.method == "DELETE" and r.path.endswith("/aliases/best.json") and not proxy.faults else None
    api.remove_alias("proj/model", "best")
    assert proxy.faults == ["lost"]
    with pytest.raises(registry.NotFoundError):
        api.artifact("proj/model:best")


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_lost_response_to_a_conditional_alias_removal(store_url: str, api: registry.Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete lands, its answer is lost, botocore's retry is refused (the object is gone):
    the remover must be told it succeeded, not that someone moved the alias."""
    import botocore.retries.standard as standard
    from test_faults import injector

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.005)
    log_files("model", {"w": b"1"}, aliases=["best"])
    api.store.check_writable()
    state = {"done": False}

    def rule(request, op):
        if not state["done"] and request.method == "DELETE" and "/aliases/best.json" in request.url:
            state["done"] = True
            return "lost"
        return None

    faults = injector(store_url, rule=rule)
    try:
        api.remove_alias("proj/model", "best")
    finally:
        faults.close()
    assert faults.counts["lost"] == 1
    with pytest.raises(registry.NotFoundError):
        api.artifact("proj/model:best")


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_compare_and_swap_retries_back_off_with_jitter(store_url: str, api: registry.Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer wins every compare-and-swap: each retry waits a random time under a
    ceiling that doubles from ``CAS_FIRST_PAUSE`` up to ``CAS_MAX_PAUSE``, then a clear conflict."""
    import registry.versions as versions

    log_files("model", {"w": b"1"}, aliases=["best"])
    log_files("model", {"w": b"2"})
    api.store.check_writable()
    cls = backend_class(store_url)

    def always_lost(self, key, data, token):
        raise PreconditionFailed(f"{key} changed since it was read")

    pauses: list[float] = []
    monkeypatch.setattr(cls, "write_if_match", always_lost)
    monkeypatch.setattr(versions, "time", SimpleNamespace(sleep=pauses.append))
    random.seed(1)
    with pytest.raises(registry.ConflictError, match=f"kept changing under {versions.CAS_ATTEMPTS} attempts"):
        api.set_alias("proj/model:v1", "best")
    ceilings = [min(versions.CAS_MAX_PAUSE, versions.CAS_FIRST_PAUSE * 2**i) for i in range(versions.CAS_ATTEMPTS)]
    assert len(pauses) == versions.CAS_ATTEMPTS
    assert all(0 <= p <= c for p, c in zip(pauses, ceilings))
    assert len(set(pauses)) == len(pauses)  # jittered, not a fixed schedule
    assert sum(pauses[-10:]) > 10 * versions.CAS_MAX_PAUSE / 4  # the later pauses grew to the cap
    assert api.artifact("proj/model:best").version == "v0"


# -- found in review: clean-up never fails finished work, a dry run deletes nothing ---------------
@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_a_gc_dry_run_leaves_even_expired_markers_alone(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(store_url)
    store.backend.write(keys.inflight("dead-writer"), b'{"schema":1,"started_at":"2020-01-01T00:00:00Z","blobs":[]}')
    monkeypatch.setattr(protection, "MARKER_LEASE_SECONDS", 0.0)
    collect_garbage(store, grace_seconds=0, dry_run=True)
    assert store.backend.exists(keys.inflight("dead-writer"))
    collect_garbage(store, grace_seconds=0)
    assert not store.backend.exists(keys.inflight("dead-writer"))


def test_a_marker_that_cannot_be_deleted_does_not_fail_a_committed_log(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(store_url)
    real_delete = store.backend.delete

    def failing(key: str) -> None:
        if key.startswith(keys.inflight_prefix()):
            raise registry.StorageError("simulated: DELETE failed after retries")
        real_delete(key)

    monkeypatch.setattr(store.backend, "delete", failing)
    with registry.init(project="proj", job_type="build") as run:
        art = registry.Artifact("data", type="dataset")
        with art.new_file("a.txt") as f:
            f.write("a")
        logged = run.log_artifact(art)  # committed, so it must not raise
    assert logged.version == "v0" and logged.created
    assert registry.Api(store_url).run(run.path).logged_artifacts()[0].qualified_name == "proj/data:v0"


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_a_vanished_source_is_named_and_leaves_no_temp_file(store_url: str, tmp_path: Path) -> None:
    source = tmp_path / "b.txt"
    source.write_text("soon gone")
    art = registry.Artifact("data", type="dataset")
    art.add_file(source)
    source.unlink()
    with registry.init(project="proj", job_type="build") as run:
        with pytest.raises(registry.IntegrityError, match="b.txt"):
            run.log_artifact(art)
    assert list((Path(store_url) / ".tmp").glob("*")) == []
