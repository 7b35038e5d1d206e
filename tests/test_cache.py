"""The local cache and downloads: near-instant repeats, verified bytes, safe concurrency, eviction."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from backends import open_backend
from helpers import log_files
from registry import keys
from registry.pack_reader import PackedReader
from registry.store import open_store
from store_fixtures import record_operations, record_reads, record_requests, small_parts, subprocess_env
from stored_bytes import StoredFile, file_byte_keys

S3_BACKENDS = ["moto", "seaweed-proxied"]


def count_gets(store) -> list[str]:
    """Record the keys of every GET the store sends."""
    return record_requests(store, "GET")


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_repeat_download_fetches_no_blob(store_url: str, tmp_path: Path) -> None:
    art = log_files("data", {f"f{i}.bin": os.urandom(1000) for i in range(20)})
    store = open_store(store_url)
    holding = {store.backend.prefix + k for f in art.file_list().files for k in StoredFile.at(store_url, f).keys}
    gets = count_gets(store)
    api = registry.Api(store_url)
    api.artifact("proj/data:latest").download(tmp_path / "one")
    # the objects holding the files' bytes (20 blobs, or the pack holding them), and no file
    # list: it was kept when logged
    assert set(file_byte_keys(store, gets)) == holding
    gets.clear()
    again = api.artifact("proj/data:latest")
    again.download(tmp_path / "two")  # a new directory: served from the cache
    same = again.pull(tmp_path / "one")  # the same directory: nothing to do
    assert file_byte_keys(store, gets) == []
    assert len(gets) <= 2  # resolving name:alias -> record costs two small requests
    assert sorted(os.listdir(tmp_path / "two")) == sorted(f.path for f in art.files())
    assert same.unchanged == sorted(f.path for f in art.files()) and same.fetched_bytes == 0


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_versions_sharing_files_fetch_only_new_blobs(store_url: str, tmp_path: Path) -> None:
    shared = {f"f{i}.bin": os.urandom(500) for i in range(10)}
    log_files("data", shared)
    v1 = log_files("data", {**shared, "new.bin": b"new"})
    new = StoredFile.of(store_url, v1, "new.bin")
    api = registry.Api(store_url)
    api.artifact("proj/data:v0").download(tmp_path / "v0")
    store = open_store(store_url)
    reads = record_reads(store)
    api.artifact("proj/data:v1").download(tmp_path / "v1")
    byte_reads = [(key, span) for key, span in reads if file_byte_keys(store, [key])]
    # the new file's bytes and nothing else (a whole blob, or its range of a pack); v1's file
    # list was kept in the cache when it was logged
    assert byte_reads == [(store.backend.prefix + p.key, (p.start, p.end) if p.packed else None) for p in new.pieces]


def test_a_corrupt_blob_in_the_store_never_lands(store_url: str, tmp_path: Path) -> None:
    art = log_files("data", {"good.txt": b"good", "bad.txt": b"original"})
    sha = next(f.digest for f in art.files() if f.path == "bad.txt")
    StoredFile.of(store_url, art, "bad.txt").replace(b"tampered")
    root = tmp_path / "dl"
    with pytest.raises(registry.IntegrityError, match="bad.txt"):
        registry.Api(store_url).artifact("proj/data:latest").download(root)
    assert not root.exists() or os.listdir(root) == []  # nothing placed, not even the good file
    cache_copy = open_store(store_url).cache.entry_path(sha)
    assert not cache_copy.exists() or cache_copy.read_bytes() != b"tampered" or open_store(store_url).cache.is_store


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_an_altered_cache_entry_is_caught_and_fetched_again(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"w.bin": b"weights" * 100})
    api = registry.Api(store_url)
    api.artifact("proj/data:latest").download(tmp_path / "a")
    store = open_store(store_url)
    entry = next(p for p in (Path(os.environ["REGISTRY_CACHE_DIR"]) / "blobs").rglob("*") if p.is_file() and p.stat().st_size == 700)
    os.chmod(entry, 0o644)
    entry.write_bytes(b"X" * 700)  # same size, new mtime
    for placed in (tmp_path / "a").iterdir():  # no other local copy to take the bytes from
        placed.unlink()
    api.artifact("proj/data:latest").download(tmp_path / "b")
    assert (tmp_path / "b" / "w.bin").read_bytes() == b"weights" * 100
    assert store.cache.verify_entry(keys.sha_of_blob_key("blobs/sha256/" + entry.parent.name + "/" + entry.name))


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_verify_rehashes_the_cache_and_a_download(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"w.bin": b"weights"})
    art = registry.Api(store_url).artifact("proj/data:latest")
    root = art.download(tmp_path / "dl")
    art.verify(root)
    art.verify()
    target = Path(root) / "w.bin"
    os.chmod(target, 0o644)
    target.write_bytes(b"changed")
    with pytest.raises(registry.IntegrityError, match="w.bin"):
        art.verify(root)


def test_download_root_with_the_right_files_is_left_alone(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"a.txt": b"A", "b.txt": b"B"})
    art = registry.Api(store_url).artifact("proj/data:latest")
    root = tmp_path / "dl"
    art.download(root)
    (root / "extra.txt").write_text("mine")
    report = art.pull(root)
    assert report.placed == [] and report.extra == ["extra.txt"]
    assert (root / "extra.txt").exists()  # reported, not removed
    art.download(root, clean=True)
    assert not (root / "extra.txt").exists()


def test_download_restores_an_edited_file_and_says_so(store_url: str, tmp_path: Path, caplog) -> None:
    log_files("data", {"a.txt": b"A", "b.txt": b"B"})
    art = registry.Api(store_url).artifact("proj/data:latest")
    root = tmp_path / "dl"
    art.download(root)
    os.unlink(root / "a.txt")
    (root / "a.txt").write_bytes(b"edited")
    with pytest.raises(registry.ConflictError, match=r"1 file\(s\) in .* were edited locally .*: a.txt"):
        art.pull(root, overwrite=False)
    assert (root / "a.txt").read_bytes() == b"edited"  # refused before writing anything
    with caplog.at_level("WARNING", logger="registry"):
        report = art.pull(root)  # the report lists it; the caller says so
    assert (root / "a.txt").read_bytes() == b"A" and report.placed == ["a.txt"] and report.restored == ["a.txt"]
    assert report.unchanged == ["b.txt"] and not caplog.records
    (root / "a.txt").unlink()
    (root / "a.txt").write_bytes(b"edited again")
    with caplog.at_level("WARNING", logger="registry"):
        art.download(root)  # W&B's rule: download() restores the version's bytes, and here it says so
    assert (root / "a.txt").read_bytes() == b"A"
    assert [r.getMessage() for r in caplog.records if "restored" in r.getMessage()] == [
        f"restored 1 locally edited file(s) in {root} to proj/data:v0: a.txt"]


def test_path_prefix_and_single_entries(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"train/x.pt": b"x", "train/y.pt": b"y", "test/x.pt": b"t"})
    art = registry.Api(store_url).artifact("proj/data:latest")
    root = Path(art.download(tmp_path / "dl", path_prefix="train/"))
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == ["train/x.pt", "train/y.pt"]
    path = art.get_entry("test/x.pt").download(tmp_path / "one")
    assert Path(path).read_bytes() == b"t"
    single = log_files("model", {"m.pth": b"weights"})
    assert Path(registry.Api(store_url).artifact("proj/model:latest").file(tmp_path / "m")).read_bytes() == b"weights"
    assert single.size == 7


def test_default_download_root_is_artifacts_name_version(store_url: str, isolated_machine: Path) -> None:
    log_files("data", {"a.txt": b"A"})
    path = registry.Api(store_url).artifact("proj/data:latest").download()
    assert Path(path) == Path("artifacts") / "data:v0"
    assert (isolated_machine / "artifacts" / "data:v0" / "a.txt").read_bytes() == b"A"


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_two_processes_downloading_at_once_both_get_correct_files(store_url: str, tmp_path: Path) -> None:
    files = {f"f{i}.bin": os.urandom(200_000) for i in range(30)}
    log_files("data", files)
    cache = tmp_path / "shared-cache"
    script = (
        "import registry, sys; a = registry.Api().artifact('proj/data:latest');"
        "a.download(sys.argv[1]); a.verify(sys.argv[1])"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"dl{i}")], env=subprocess_env(store_url, cache),
                         stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    for i in range(2):
        for name, data in files.items():
            assert (tmp_path / f"dl{i}" / name).read_bytes() == data
    leftovers = [p for p in cache.rglob("*.part")]
    assert leftovers == []


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
@pytest.mark.parametrize("again", ["again0", "dl0"])  # a new directory, or the one that holds it all already
def test_eviction_keeps_the_cache_under_its_limit_lru_first(store_url: str, again: str, tmp_path: Path) -> None:
    for i in range(5):
        log_files(f"d{i}", {"blob.bin": bytes([i]) * 10_000})
    api = registry.Api(store_url)
    for i in range(5):
        api.artifact(f"proj/d{i}:latest").download(tmp_path / f"dl{i}")
    api.artifact("proj/d0:latest").download(tmp_path / again)  # d0 becomes most recently used
    store = open_store(store_url)
    files, freed = store.cache.clean(max_size=25_000)
    remaining = {p.name for p, _, _ in store.cache.entries()}
    assert sum(size for _, size, _ in store.cache.entries()) <= 25_000
    assert files >= 3 and freed >= 30_000
    d0_sha = api.artifact("proj/d0:latest").files()[0].digest
    assert d0_sha[2:] in remaining  # the recently used one survived
    api.artifact("proj/d1:latest").download(tmp_path / "refetch")  # evicted entries come back
    assert (tmp_path / "refetch" / "blob.bin").read_bytes() == bytes([1]) * 10_000


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_local_store_is_its_own_cache(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"a.bin": os.urandom(5000)})
    registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "dl")
    cache_blobs = Path(os.environ["REGISTRY_CACHE_DIR"]) / "blobs"
    assert not cache_blobs.exists()  # no second copy
    store_blob = next(p for p in (Path(store_url) / "blobs").rglob("*") if p.is_file() and p.stat().st_size == 5000)
    assert os.path.samefile(store_blob, tmp_path / "dl" / "a.bin") or (tmp_path / "dl" / "a.bin").read_bytes() == store_blob.read_bytes()


def test_relogging_unchanged_files_hashes_nothing(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"{i}.bin").write_bytes(os.urandom(1000))
    with registry.init(project="proj") as run:
        art = registry.Artifact("data", type="dataset")
        art.add_dir(data)
        run.log_artifact(art)
    import registry.hashing as hashing

    calls: list[Path] = []
    real = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda p: calls.append(p) or real(p))
    with registry.init(project="proj") as run:
        art = registry.Artifact("data", type="dataset")
        art.add_dir(data)
        assert run.log_artifact(art).created is False
    assert calls == []
    (data / "0.bin").write_bytes(b"changed")
    with registry.init(project="proj") as run:
        art = registry.Artifact("data", type="dataset")
        art.add_dir(data)
        assert run.log_artifact(art).version == "v1"
    assert [Path(p).name for p in calls] == ["0.bin"]


def test_many_blobs_are_checked_by_listing_prefixes(store_url: str) -> None:
    from registry.blobs import LIST_THRESHOLD

    store = open_store(store_url)
    present = [store.blobs.put_bytes(f"blob {i}".encode()) for i in range(20)]
    absent = [f"{i:064x}" for i in range(LIST_THRESHOLD)]
    assert store.blobs.missing(present + absent) == set(absent)
    assert store.blobs.missing(present[:3] + absent[:3]) == set(absent[:3])  # the HEAD path agrees


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_large_blobs_move_in_parts_and_are_verified_as_they_stream(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file travels as chunks of at most ``MAX_CHUNK`` bytes, spread over packs that
    are closed at ``PACK_TARGET`` (lowered here, as ``small_parts`` lowers S3's part size), and
    comes back by ranged GETs; each chunk is checked as its range arrives, the file before it
    is placed."""
    from registry import chunking, pack_writer
    from registry.packs import PackBuilder

    part = 4 * 1024 * 1024
    monkeypatch.setattr(pack_writer, "PackBuilder", lambda: PackBuilder(part))
    big = os.urandom(2 * part + 12345)
    store = open_store(store_url)
    puts = record_requests(store, "PUT")
    art = log_files("model", {"weights.bin": big, "config.json": b"{}"})
    weights = StoredFile.of(store_url, art, "weights.bin")
    assert len(weights.pieces) > 8 and all(p.end - p.start <= chunking.MAX_CHUNK for p in weights.pieces)
    packs = {store.backend.prefix + k for k in weights.keys}
    assert len(packs) >= 2 and packs <= set(puts)  # the file's bytes went in several PUTs

    reads = record_reads(store)
    root = Path(registry.Api(store_url).artifact("proj/model:latest").download(tmp_path / "one"))
    assert (root / "weights.bin").read_bytes() == big
    ranged = [span for key, span in reads if key in packs]
    assert len(ranged) >= len(packs) and None not in ranged  # ranged GETs of the packs, not whole objects

    weights.flip_last_byte()
    store.cache.clean(max_size=0)
    (root / "weights.bin").unlink()  # no local copy left: the store's is the only source
    with pytest.raises(registry.IntegrityError, match=r"weights\.bin"):
        registry.Api(store_url).artifact("proj/model:latest").download(tmp_path / "two")
    assert not (tmp_path / "two").exists() or os.listdir(tmp_path / "two") == []


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_large_format_1_blobs_move_in_parts_and_are_verified_as_they_stream(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole-file blob (format 1, and the large files ``registry migrate`` leaves loose) goes
    up as a multipart upload and comes down by ranged GETs hashed in order as they arrive;
    read here by today's format-2 client."""
    part = 5 * 1024 * 1024  # S3's smallest part
    small_parts(monkeypatch, part)
    big = os.urandom(2 * part + 12345)
    monkeypatch.setenv("REGISTRY_FORMAT", "1")  # only format 1 writes a large file as one blob
    calls = record_operations(open_store(store_url))
    art = log_files("model", {"weights.bin": big, "config.json": b"{}"})
    assert calls.count("UploadPart") == 3 and calls.count("CompleteMultipartUpload") == 1

    monkeypatch.delenv("REGISTRY_FORMAT")
    store = open_store(store_url)
    calls = record_operations(store)
    root = Path(registry.Api(store_url).artifact("proj/model:latest").download(tmp_path / "one"))
    assert (root / "weights.bin").read_bytes() == big
    assert calls.count("GetObject") >= 3  # ranged GETs for the big blob, hashed in order as they arrive

    sha = next(f.digest for f in art.files() if f.path == "weights.bin")
    tampered = bytearray(big)
    tampered[-1] ^= 1
    open_backend(store_url).write(keys.blob(sha), bytes(tampered))
    store.cache.clean(max_size=0)
    (root / "weights.bin").unlink()  # no local copy left: the store's is the only source
    with pytest.raises(registry.IntegrityError, match="weights.bin"):
        registry.Api(store_url).artifact("proj/model:latest").download(tmp_path / "two")
    assert not (tmp_path / "two").exists() or os.listdir(tmp_path / "two") == []


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
@pytest.mark.parametrize("mode", ["auto", "copy", "hardlink"])
def test_each_link_mode_places_the_right_bytes(store_url: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_LINK_MODE", mode)
    files = {"a.bin": b"same bytes", "dir/twin.bin": b"same bytes", "dir/deeper/c.bin": os.urandom(3000)}
    log_files("data", files)
    store = open_store(store_url)
    for n in ("cold", "warm"):  # fetched while placing, then placed from the cache
        root = Path(registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / n))
        for path, data in files.items():
            placed = root / path
            assert placed.read_bytes() == data
            shares_inode = os.stat(placed).st_ino == os.stat(store.cache.entry_path(registry.hashing.sha256_bytes(data))).st_ino
            assert shares_inode == (mode == "hardlink"), f"{mode}: {path} shares its inode: {shares_inode}"
        assert [p for p in root.rglob(".*")] == []  # no temp file left behind


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
@pytest.mark.parametrize("into", ["new", "existing"])
def test_entries_evicted_between_fetch_and_placement_still_give_every_file(
        store_url: str, into: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copy mode writes each fetched file beside its destination as it lands, so its cache entry
    is not checked again before placement: a concurrent eviction right after the fetch still
    leaves every file placed, a second destination of the same bytes fetching them again."""
    monkeypatch.setenv("REGISTRY_LINK_MODE", "copy")
    files = {f"f{i}.bin": os.urandom(700 + i) for i in range(8)}
    files |= {"twin/f0.bin": files["f0.bin"], "twin/f1.bin": files["f1.bin"]}
    log_files("data", files)
    real_fetch = PackedReader.fetch
    evicted: list[str] = []

    def fetch_then_evict(self, entries, *args, **kwargs):
        wrote = real_fetch(self, entries, *args, **kwargs)
        for sha in wrote:  # another process's eviction, just after
            self.cache.entry_path(sha).unlink()
            evicted.append(sha)
        return wrote

    monkeypatch.setattr(PackedReader, "fetch", fetch_then_evict)
    root = tmp_path / "root"
    if into == "existing":
        root.mkdir()
    registry.Api(store_url).artifact("proj/data:latest").download(root)
    assert len(evicted) == 8
    assert {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()} == files


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_a_failed_download_leaves_no_directory_or_temp_file(store_url: str, tmp_path: Path) -> None:
    art = log_files("data", {f"deep/dir{i}/f.bin": os.urandom(2000) for i in range(20)} | {"other/bad.bin": b"original"})
    StoredFile.of(store_url, art, "other/bad.bin").replace(b"tampered")
    root = tmp_path / "existing"
    root.mkdir()
    (root / "mine.txt").write_text("the user's own file")
    with pytest.raises(registry.IntegrityError, match="other/bad.bin"):
        registry.Api(store_url).artifact("proj/data:latest").download(root)
    assert sorted(p.name for p in root.rglob("*")) == ["mine.txt"]


def test_hash_follows_parts_written_out_of_order(tmp_path: Path) -> None:
    """s3transfer writes a large blob's parts at their offsets in any order, and a retried part
    writes its bytes again; the hash must still see every byte once, in order."""
    import random

    from backends.s3_streams import HashedInOrder

    data = os.urandom(3 * 1024 * 1024 + 123)
    step = 256 * 1024
    parts = [(offset, data[offset : offset + step]) for offset in range(0, len(data), step)]
    random.Random(7).shuffle(parts)
    hasher = hashlib.sha256()
    with open(tmp_path / "blob", "wb+") as out:
        followed = HashedInOrder(out.fileno(), hasher)
        for offset, chunk in parts + parts[:3]:
            followed.seek(offset)
            followed.write(chunk)
        followed.finish()
    assert (tmp_path / "blob").read_bytes() == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_progress_counts_bytes_while_a_large_blob_moves(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar must move during a big transfer, not jump at the end: byte counts arrive in pieces."""
    part = 5 * 1024 * 1024
    small_parts(monkeypatch, part)
    files = {"weights.bin": os.urandom(3 * part), "small.txt": b"tiny"}
    source = tmp_path / "src"
    source.mkdir()
    for name, data in files.items():
        (source / name).write_bytes(data)
    total = sum(len(d) for d in files.values())

    sent: list[int] = []
    with registry.init(project="proj", job_type="build") as run:
        artifact = registry.Artifact("model", type="model")
        artifact.add_dir(source)
        run.log_artifact(artifact, progress=sent.append)
    assert sum(sent) == total and len(sent) >= 4  # >= 3 parts for the big file, 1 for the small one
    for name in files:  # else the download would copy the pushed files instead of fetching them
        (source / name).unlink()

    received: list[tuple[int, int]] = []
    registry.Api(store_url).artifact("proj/model:latest").download(tmp_path / "dl", progress=lambda b, f: received.append((b, f)))
    byte_counts = [b for b, _ in received if b]
    assert sum(byte_counts) == total and len(byte_counts) > 3  # the big blob reported as it streamed
    assert sum(f for _, f in received) == len(files)


def test_a_killed_downloads_temp_files_are_cleaned_by_the_next_download(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"sub/a.bin": b"A" * 1000, "b.txt": b"B"})
    root = tmp_path / "dl"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "video.part").write_bytes(b"the user's own")
    script = ("import sys, time; from pathlib import Path; from registry.tempnames import temp_beside\n"
              "p = temp_beside(Path(sys.argv[1])); p.write_bytes(b'half'); print(p, flush=True); time.sleep(600)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    killed = subprocess.Popen([sys.executable, "-c", script, str(root / "sub" / "a.bin")], stdout=subprocess.PIPE, text=True, env=env)
    alive = subprocess.Popen([sys.executable, "-c", script, str(root / "b.txt")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        leftover, running = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        killed.kill()  # SIGKILL: no clean-up of its own
        killed.wait()
        report = registry.Api(store_url).artifact("proj/data:latest").pull(root)
        assert not leftover.exists() and report.leftovers_removed == 1
        assert running.exists()  # a download still running keeps its temp file
        assert report.extra == ["sub/video.part"]  # a user's file named *.part is theirs: reported, kept
        assert sorted(report.placed) == ["b.txt", "sub/a.bin"]
    finally:
        alive.kill()
        alive.wait()
    again = registry.Api(store_url).artifact("proj/data:latest").pull(root, clean=True)
    assert again.leftovers_removed == 1 and not running.exists()
    assert again.removed == ["sub/video.part"]


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_every_path_that_fills_the_cache_evicts_to_its_limit(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("data", {f"f{i}.bin": os.urandom(10_000) for i in range(5)})
    log_files("one", {"only.bin": os.urandom(10_000)})
    paths = {
        "Artifact.download": lambda api, n: api.artifact("proj/one").download(tmp_path / n),
        "ArtifactFile.download": lambda api, n: api.artifact("proj/one").get_entry("only.bin").download(tmp_path / n),
        "Artifact.file": lambda api, n: api.artifact("proj/one").file(tmp_path / n),
        "Api.cached_file (UI downloads)": lambda api, n: api.cached_file(api.artifact("proj/one").file_list().files[0]),
    }
    for n, (what, fill) in enumerate(paths.items()):
        unlimited = registry.Api(store_url)
        unlimited.store.cache.clean(max_size=0)
        unlimited.artifact("proj/data").download(tmp_path / f"filler{n}")  # 50 KB in the cache, no limit
        for placed in (tmp_path / f"filler{n}").iterdir():
            placed.unlink()
        monkeypatch.setenv("REGISTRY_CACHE_MAX", "25KB")
        limited = registry.Api(store_url)
        fill(limited, f"out{n}")
        assert sum(size for _, size, _ in limited.store.cache.entries()) <= 25_000, what
        monkeypatch.delenv("REGISTRY_CACHE_MAX")


def test_bytes_that_exist_nowhere_else_are_never_replaced_silently(store_url: str, tmp_path: Path) -> None:
    log_files("model", {"model.pt": b"version-0 weights"})
    work = tmp_path / "training"
    work.mkdir()
    (work / "model.pt").write_bytes(b"new weights, never logged")
    abandoned = registry.Artifact("model", type="model")
    abandoned.add_dir(work)  # hashed (the hash database knows these bytes) but never uploaded
    art = registry.Api(store_url).artifact("proj/model:v0")
    with pytest.raises(registry.ConflictError, match="model.pt"):
        art.pull(work, overwrite=False)
    assert (work / "model.pt").read_bytes() == b"new weights, never logged"
    log_files("model", {"model.pt": b"version-1 weights"})
    art.pull(tmp_path / "checkout")  # v0 here, then v1 over it: an older version's bytes go quietly
    v1 = registry.Api(store_url).artifact("proj/model:v1").pull(tmp_path / "checkout", overwrite=False)
    assert v1.placed == ["model.pt"] and v1.restored == []


def test_a_temp_file_from_another_host_is_never_taken_for_a_leftover() -> None:
    from registry import tempnames

    mine = tempnames.temp_beside(Path("/x/a")).name
    other_host = "0000" if not mine.startswith(".0000") else "ffff"
    dead_pid = 4_000_000  # above any pid_max
    assert tempnames.is_abandoned(f".{mine[1:5]}{dead_pid}-0123456789.part")
    assert not tempnames.is_abandoned(f".{other_host}{dead_pid}-0123456789.part")
    assert tempnames.is_temp_name(f".{other_host}{dead_pid}-0123456789.part")


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_a_repeat_pull_into_the_same_directory_hashes_nothing(store_url: str, mode: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies are recognised by the hash database, hard links by sharing their cache entry's inode."""
    monkeypatch.setenv("REGISTRY_LINK_MODE", mode)
    files = {f"d/f{i}.bin": os.urandom(1000) for i in range(10)}
    checked = _pull_twice_hashing_nothing(store_url, tmp_path, monkeypatch, files)
    assert sorted(checked) == ([] if mode == "copy" else sorted({hashlib.sha256(d).hexdigest() for d in files.values()}))


def _pull_twice_hashing_nothing(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                files: dict[str, bytes]) -> list[str]:
    """Log ``files``, pull them, pull again into the same directory: nothing is hashed the second
    time. Returns the blobs whose cache entries that pull checked: only those of files the hash
    database does not vouch for (hard links, which it need not remember: they share the entry's inode)."""
    import registry.download_root as download_root
    from registry.cache import Cache

    log_files("data", files)
    registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "one")
    hashed: list[str] = []
    real = download_root.sha256_file
    monkeypatch.setattr(download_root, "sha256_file", lambda p: hashed.append(str(p)) or real(p))
    checked: list[str] = []
    real_valid = Cache.valid_entries
    monkeypatch.setattr(Cache, "valid_entries", lambda self, sizes: checked.extend(sizes) or real_valid(self, sizes))
    report = registry.Api(store_url).artifact("proj/data:latest").pull(tmp_path / "one")
    assert hashed == [] and sorted(report.unchanged) == sorted(files) and report.placed == []
    return checked


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_files_placed_are_remembered_in_batches_as_they_land(store_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Copies are remembered a few at a time beside the placement: a repeat pull still hashes nothing."""
    import registry.download as download

    monkeypatch.setenv("REGISTRY_LINK_MODE", "copy")
    monkeypatch.setattr(download, "REMEMBER_BATCH", 3)
    assert _pull_twice_hashing_nothing(store_url, tmp_path, monkeypatch,
                                       {f"d{i % 3}/f{i}.bin": os.urandom(1000) for i in range(10)}) == []


@pytest.mark.parametrize("store_url", ["moto", "seaweed"], indirect=True)  # a local store is its own cache
def test_hard_link_pulls_on_the_pushing_machine_link_cache_entries_made_of_its_files(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that logged files knows where their bytes are. In hard-link mode a pull copies
    them (verified) into cache entries and links those -- never the user's own files, which stay
    unlinked -- so the next pull into a new directory links at once, reading no local file."""
    monkeypatch.setenv("REGISTRY_LINK_MODE", "hardlink")
    source = tmp_path / "src"
    files = {f"d{i % 2}/f{i}.bin": os.urandom(500 + i) for i in range(6)}
    for path, data in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(data)
    with registry.init(project="proj", job_type="build") as run:
        art = registry.Artifact("data", type="dataset")
        art.add_dir(source)
        run.log_artifact(art)
    first = registry.Api(store_url).artifact("proj/data:latest").pull(tmp_path / "one")
    second = registry.Api(store_url).artifact("proj/data:latest").pull(tmp_path / "two")
    assert first.local_bytes == sum(map(len, files.values())) and second.local_bytes == 0
    for path, data in files.items():
        assert (source / path).stat().st_nlink == 1  # the user's file is never linked
        one, two = tmp_path / "one" / path, tmp_path / "two" / path
        assert one.read_bytes() == two.read_bytes() == data
        assert one.stat().st_ino == two.stat().st_ino and one.stat().st_nlink >= 3  # one entry, linked twice


def test_an_unchanged_directory_is_recalled_from_one_row_and_any_change_is_seen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole walk's hashes come back from one row while no file's stat changed; an edited,
    added or removed file changes the fingerprint, and the per-file rows decide again."""
    from registry.hashing import HashState, sha256_file

    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        (data / f"{i}.bin").write_bytes(os.urandom(1000))
    state = HashState(tmp_path / "state.sqlite")

    def walk() -> list[tuple[str, int]]:
        return state.hash_files(sorted(str(p) for p in data.iterdir()), under=str(data))

    first = walk()
    assert [sha for sha, _ in first] == [sha256_file(data / f"{i}.bin") for i in range(4)]

    def no_row_by_row(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged walk reads the per-file rows")

    with monkeypatch.context() as patched:
        patched.setattr(HashState, "lookup_many", no_row_by_row)
        assert walk() == first
    edited = data / "2.bin"
    before = edited.stat().st_mtime_ns
    edited.write_bytes(os.urandom(1000))  # same size; the mtime moves on
    os.utime(edited, ns=(before + 1_000_000, before + 1_000_000))
    second = walk()
    assert second[2] == (sha256_file(edited), 1000) and second[:2] == first[:2] and second[3] == first[3]
    (data / "4.bin").write_bytes(b"new")
    (data / "0.bin").unlink()
    assert [sha for sha, _ in walk()] == [sha256_file(data / f"{i}.bin") for i in range(1, 5)]


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
@pytest.mark.parametrize("mode", ["copy", "hardlink"])
def test_a_new_directory_appears_only_when_complete(store_url: str, mode: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A download into a directory that does not exist builds it beside, hidden, and renames it
    into place whole: while files land, neither the root nor its parents are there."""
    monkeypatch.setenv("REGISTRY_LINK_MODE", mode)
    files = {f"d{i % 3}/f{i}.bin": os.urandom(700 + i) for i in range(9)}
    log_files("data", files)
    root = tmp_path / "new" / "deeper"
    seen: list[bool] = []
    for n in ("cold", "warm"):  # fetched while placing, then placed from the cache
        target = root / n
        registry.Api(store_url).artifact("proj/data:latest").download(
            target, progress=lambda _b, f, t=target: f and seen.append(t.exists()))
        assert {p: (target / p).read_bytes() for p in files} == files
    assert seen == [False] * 2 * len(files)
    assert sorted(p.name for p in root.iterdir()) == ["cold", "warm"]  # no hidden directory left


@pytest.mark.parametrize("store_url", S3_BACKENDS, indirect=True)
def test_a_failed_download_into_a_new_directory_leaves_nothing(store_url: str, tmp_path: Path) -> None:
    art = log_files("data", {f"dir{i}/f.bin": os.urandom(2000) for i in range(5)} | {"other/bad.bin": b"original"})
    StoredFile.of(store_url, art, "other/bad.bin").replace(b"tampered")
    home = tmp_path / "home"
    home.mkdir()
    (home / "mine.txt").write_text("the user's own file")
    with pytest.raises(registry.IntegrityError, match="other/bad.bin"):
        registry.Api(store_url).artifact("proj/data:latest").download(home / "made" / "for" / "it")
    assert [p.name for p in home.iterdir()] == ["mine.txt"]  # neither the root, its parents, nor a staging dir


def test_a_killed_downloads_new_directory_is_removed_by_the_next_download(store_url: str, tmp_path: Path) -> None:
    """A download into a new directory killed half-way leaves its hidden directory beside the
    root; the next download into that parent (or into a directory above it) removes it, not a
    running download's."""
    log_files("data", {"sub/a.bin": b"A" * 1000, "b.txt": b"B"})
    script = ("import os, sys, time; from pathlib import Path; from registry.tempnames import temp_beside\n"
              "p = temp_beside(Path(sys.argv[1])); os.mkdir(p); (p / 'half.bin').write_bytes(b'half')\n"
              "print(p, flush=True); time.sleep(600)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    parent = tmp_path / "downloads"
    parent.mkdir()
    killed = subprocess.Popen([sys.executable, "-c", script, str(parent / "one")], stdout=subprocess.PIPE, text=True, env=env)
    alive = subprocess.Popen([sys.executable, "-c", script, str(parent / "two")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        leftover, running = Path(killed.stdout.readline().strip()), Path(alive.stdout.readline().strip())
        killed.kill()  # SIGKILL: no clean-up of its own
        killed.wait()
        report = registry.Api(store_url).artifact("proj/data:latest").pull(parent / "three")
        assert not leftover.exists() and report.leftovers_removed == 1
        assert running.is_dir()  # a download still running keeps its directory
        assert sorted(report.placed) == ["b.txt", "sub/a.bin"]
    finally:
        alive.kill()
        alive.wait()
    above = registry.Api(store_url).artifact("proj/data:latest").pull(parent)  # an existing root
    assert above.leftovers_removed == 1 and not running.exists()
    assert above.extra == ["three/b.txt", "three/sub/a.bin"]  # nothing of the hidden directories


def test_the_hash_database_finds_copies_by_sha256_in_old_databases_too(tmp_path: Path) -> None:
    """Rows are found by their sha256's first digits (a smaller index); a sha256 sharing them is
    told apart, and a database made with the older whole-sha256 index opens and answers."""
    import sqlite3

    from registry.hashing import HashState

    db_path = tmp_path / "state.sqlite"
    old = sqlite3.connect(db_path)
    old.execute("CREATE TABLE hashes (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
                " size INTEGER, mtime_ns INTEGER, sha256 TEXT)")
    old.execute("CREATE INDEX hashes_by_sha256 ON hashes (sha256)")
    old.commit()
    old.close()
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    sha_a, sha_b = "0123abcd" + "1" * 56, "0123abcd" + "2" * 56  # the same first eight digits
    hashes = HashState(db_path)
    hashes.remember([(a, a.stat(), sha_a), (b, b.stat(), sha_b)])
    assert hashes.known_copies([sha_b]) == {sha_b: b}
    assert hashes.known_copies([sha_a, sha_b, "0123abcd" + "3" * 56]) == {sha_a: a, sha_b: b}
    indexes = {row[0] for row in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "hashes_by_sha256" not in indexes  # replaced by the smaller one


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_a_root_made_by_another_process_meanwhile_is_filled_as_it_is(store_url: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The hidden directory never replaces a root that appeared while it was being built."""
    monkeypatch.setenv("REGISTRY_LINK_MODE", "copy")
    files = {f"d/f{i}.bin": os.urandom(500) for i in range(4)}
    log_files("data", files)
    root = tmp_path / "dl"

    def someone_else(_bytes: int, placed: int) -> None:
        if placed and not root.exists():  # (placing threads may both get here)
            root.mkdir(exist_ok=True)
            (root / "theirs.txt").write_text("made meanwhile")

    report = registry.Api(store_url).artifact("proj/data:latest").pull(root, progress=someone_else)
    assert {p: (root / p).read_bytes() for p in files} == files
    assert (root / "theirs.txt").read_text() == "made meanwhile" and report.extra == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_uses_of_entries_recorded_by_an_older_version_still_count_for_eviction(tmp_path: Path) -> None:
    """Uses are marked in a narrow table of their own; a cache written before it existed gets its
    rows once, so marking a use of an old entry still makes it the most recently used."""
    import sqlite3

    from registry.cache_index import CacheIndex

    entries = tmp_path / "blobs"
    entries.mkdir()
    old, older = entries / "old", entries / "older"
    for path in (old, older):
        path.write_bytes(b"x")
    db = sqlite3.connect(tmp_path / "state.sqlite")  # as an older version left it: no cache_used
    db.execute("CREATE TABLE cache_entries (path TEXT PRIMARY KEY, sha256 TEXT, size INTEGER,"
               " mtime_ns INTEGER, last_used REAL)")
    with db:
        db.executemany("INSERT INTO cache_entries VALUES (?,?,?,?,?)",
                       [(str(older), "a" * 64, 1, 0, 1000.0), (str(old), "b" * 64, 1, 0, 2000.0)])
    db.close()
    index = CacheIndex(tmp_path / "state.sqlite")
    assert [p.name for p, _, _ in sorted(index.entries(entries), key=lambda e: e[2])] == ["older", "old"]
    index.flush([str(older)])
    assert [p.name for p, _, _ in sorted(index.entries(entries), key=lambda e: e[2])] == ["old", "older"]
    wide = sqlite3.connect(tmp_path / "state.sqlite").execute("SELECT path, last_used FROM cache_entries")
    assert dict(wide.fetchall()) == {str(older): 1000.0, str(old): 2000.0}  # the wide rows are not rewritten
