"""Format 2 end to end (docs/FORMAT.md): packs, content-defined chunks and manifest pages on a
real SeaweedFS (and the other backends where they apply), old stores, gc and migration."""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import registry
from registry import chunking, filelists, keys, packs, placement
from registry.cli import cli
from registry.errors import IntegrityError
from registry.filelists import version_entries
from registry.gc import collect_garbage
from registry.migrate import migrate
from registry.pack_reader import PackedReader
from registry.packs import index_of_pack, parse_index
from registry.protection import Protection
from registry.store import open_store
from store_fixtures import proxy_of

KiB, MiB = 1024, 1024 * 1024


@pytest.fixture(autouse=True)
def format_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_FORMAT", "2")


def _dataset(count: int = 300, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    files = {f"d{i % 7}/f{i:04d}.bin": rng.randbytes(rng.randint(1, 4 * KiB)) for i in range(count)}
    files["empty.txt"] = b""
    files["copy/of/first.bin"] = files["d0/f0000.bin"]  # the same bytes twice: packed once
    files["model.bin"] = rng.randbytes(3 * MiB + 123)  # cut into chunks
    return files


def _log(name: str, files: dict[str, bytes], tmp_path: Path, project: str = "proj") -> registry.Artifact:
    source = tmp_path / f"src-{name}-{len(files)}-{os.urandom(3).hex()}"
    for path, data in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(data)
    with registry.init(project=project, job_type="build") as run:
        artifact = registry.Artifact(name, type="dataset")
        artifact.add_dir(str(source))
        return run.log_artifact(artifact)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _fresh_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / f"cache-{name}"))


def _keys(prefix: str) -> list[str]:
    return [info.key for info in open_store().backend.list(prefix)]


@pytest.mark.parametrize("store_url", ["local", "moto", "seaweed"], indirect=True)
def test_a_version_round_trips_byte_for_byte(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _dataset()
    logged = _log("data", files, tmp_path)
    assert logged.record.paged and logged.record.schema_version == 2
    _fresh_machine(monkeypatch, tmp_path, "reader")
    art = registry.Api(store_url).artifact("proj/data:latest")
    out = Path(art.download(tmp_path / "out"))
    assert _tree(out) == files
    shown = {f.path: f.sha256 for f in art.file_list().files}
    assert shown == {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}  # sha256sum matches show


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_small_files_live_in_packs_and_large_ones_in_chunks(store_url: str, tmp_path: Path) -> None:
    files = _dataset()
    logged = _log("data", files, tmp_path)
    packs = _keys(keys.packs_prefix())
    assert packs and len(_keys(keys.pack_index_prefix())) == len(packs)
    assert logged.record.packs and {keys.pack(p) for p in logged.record.packs} == set(packs)
    model = next(f for f in logged.file_list().files if f.path == "model.bin")
    assert model.chunks is not None and len(model.chunks) > 2
    assert sum(length for _, length in model.chunks) == len(files["model.bin"])
    chunk_ids = set()
    for key in _keys(keys.pack_index_prefix()):
        chunk_ids |= parse_index(open_store().backend.read(key), key).keys()
    distinct_small = {hashlib.sha256(b).hexdigest() for p, b in files.items() if p != "model.bin"}
    assert distinct_small | {c for c, _ in model.chunks} == chunk_ids  # each chunk once, nothing else
    # no blob per file: only the manifest pages are blobs
    assert len(_keys(keys.blob_prefix())) < 5


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_pulling_many_small_files_takes_a_few_requests(store_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"d{i % 10}/{i}.txt": os.urandom(512) for i in range(1000)}
    _log("many", files, tmp_path)
    puts = proxy_of(store_url).requests("PUT")
    assert len(puts) < 30  # packs, indexes, pages, records: not a request per file
    _fresh_machine(monkeypatch, tmp_path, "reader")
    before = len(proxy_of(store_url).requests("GET"))
    out = Path(registry.Api(store_url).artifact("proj/many:latest").download(tmp_path / "out"))
    gets = len(proxy_of(store_url).requests("GET")) - before
    assert _tree(out) == files
    assert gets < 15


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_an_edited_checkpoint_uploads_only_the_chunks_around_the_edits(store_url: str, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    original = rng.randbytes(16 * MiB)
    _log("ckpt", {"model.bin": original}, tmp_path)
    edited = bytearray(original)
    for offset in (3 * MiB, 11 * MiB):
        edited[offset : offset + KiB] = rng.randbytes(KiB)
    inserted = original[: 8 * MiB] + rng.randbytes(KiB) + original[8 * MiB :]
    proxy = proxy_of(store_url)
    for name, data in (("overwrite", bytes(edited)), ("insert", inserted)):
        before = len(proxy.requests("PUT"))
        _log("ckpt", {"model.bin": data}, tmp_path)
        sent = sum(int(r.headers.get("content-length", 0)) for r in proxy.requests("PUT")[before:]
                   if f"/{keys.packs_prefix()}" in r.path)
        assert 0 < sent < 4 * MiB, f"{name}: {sent} bytes of packs for a 16 MiB file"
    _fresh_machine(monkeypatch, tmp_path, "reader")
    api = registry.Api(store_url)
    for version, data in (("v1", bytes(edited)), ("v2", inserted)):
        out = Path(api.artifact(f"proj/ckpt:{version}").download(tmp_path / version))
        assert (out / "model.bin").read_bytes() == data


def _rewrite_pack(transform) -> None:
    backend = open_store().backend
    key = _keys(keys.packs_prefix())[0]
    backend.write(key, transform(backend.read(key)))


@pytest.mark.parametrize("damage", ["flipped byte", "flipped byte in the last chunk", "truncated", "swapped"])
@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_a_damaged_pack_is_detected_and_nothing_is_placed(store_url: str, tmp_path: Path, damage: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _log("other", {"x.bin": os.urandom(3000)}, tmp_path, project="elsewhere")
    other_pack = _keys(keys.packs_prefix())[0]
    files = {f"f{i}.bin": os.urandom(2000) for i in range(50)}
    logged = _log("data", files, tmp_path)
    backend = open_store().backend
    key = keys.pack(logged.record.packs[0])
    body = backend.read(key)
    if damage == "flipped byte":
        body = body[:100] + bytes([body[100] ^ 1]) + body[101:]
    elif damage == "flipped byte in the last chunk":  # the files before it arrive (and are written) first
        store = open_store()
        store.pack_indexes.load([logged.record.packs[0]])
        at = max(offset for offset, _ in store.pack_indexes.entries_of(logged.record.packs[0]).values())
        body = body[:at] + bytes([body[at] ^ 1]) + body[at + 1:]
    elif damage == "truncated":
        body = body[: len(body) // 2]
    else:
        body = backend.read(other_pack)
    backend.write(key, body)
    _fresh_machine(monkeypatch, tmp_path, "reader")
    with pytest.raises(IntegrityError):
        registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "out")
    # nothing placed, and no temp file of the files written into the root as they arrived
    assert not (tmp_path / "out").exists() or not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_gc_drops_dead_packs_and_spares_live_and_in_flight_ones(store_url: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first = _log("data", {f"a{i}": os.urandom(1000) for i in range(20)}, tmp_path)
    second_files = {f"b{i}": os.urandom(1000) for i in range(20)}
    second = _log("data", second_files, tmp_path)
    third = _log("keep", {"k": os.urandom(1000)}, tmp_path)
    first.delete()
    store = open_store()
    with Protection(store.blobs) as guard:
        guard.cover(third.record.packs or ())
        third_only = set(third.record.packs or ())
        registry.Api(store_url).artifact("proj/keep:v0").delete()
        report = collect_garbage(store, grace_seconds=0)
        assert {keys.pack(p) for p in first.record.packs or ()} <= set(report.deleted)
        assert not {keys.pack(p) for p in third_only} & set(report.deleted)  # named by a writer in flight
    left = set(_keys(keys.packs_prefix()))
    assert {keys.pack(p) for p in second.record.packs or ()} <= left
    assert not {keys.pack(p) for p in first.record.packs or ()} & left
    assert not {keys.pack_index(p) for p in first.record.packs or ()} & set(_keys(keys.pack_index_prefix()))
    _fresh_machine(monkeypatch, tmp_path, "reader")
    out = Path(registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "out"))
    assert _tree(out) == second_files


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_a_format_1_store_stays_readable_and_takes_format_2_versions(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_FORMAT", "1")
    old_files = {f"f{i}.bin": os.urandom(1500) for i in range(100)}
    old = _log("data", old_files, tmp_path)
    assert not old.record.paged
    monkeypatch.setenv("REGISTRY_FORMAT", "2")
    new_files = {**old_files, "f0.bin": b"changed", "new.bin": os.urandom(100)}
    new = _log("data", new_files, tmp_path)
    assert new.record.paged and new.record.version == 1
    if store_url.startswith("s3://"):  # unchanged small files are found as format-1 blobs: not packed again
        (index_key,) = _keys(keys.pack_index_prefix())
        assert len(parse_index(open_store().backend.read(index_key), index_key)) == 2
    _fresh_machine(monkeypatch, tmp_path, "reader")
    api = registry.Api(store_url)
    assert _tree(Path(api.artifact("proj/data:v0").download(tmp_path / "v0"))) == old_files
    assert _tree(Path(api.artifact("proj/data:v1").download(tmp_path / "v1"))) == new_files


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_migrate_packs_a_format_1_store_idempotently(store_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_FORMAT", "1")
    files = {f"d{i % 4}/{i}.bin": os.urandom(800) for i in range(300)}
    files["big.bin"] = os.urandom(2 * MiB)  # large blobs stay loose
    _log("data", files, tmp_path)
    store = open_store()
    listing = _keys("")
    plan = migrate(store, dry_run=True)
    assert plan.to_pack == 300 and plan.versions == 1
    dry = CliRunner().invoke(cli, ["migrate"], prog_name="registry")  # the command's default is a dry run too
    assert dry.exit_code == 0 and "would pack 300 blob(s)" in dry.output and "--apply" in dry.output
    assert _keys("") == listing  # a dry run changes nothing
    done = migrate(store, dry_run=False)
    assert done.to_pack == 300 and done.loose_deleted == 300 and done.packs
    assert len(_keys(keys.blob_prefix())) == 2  # the file list and the large file
    again = CliRunner().invoke(cli, ["migrate", "--apply"], prog_name="registry")
    assert again.exit_code == 0 and "packed 0 blob(s)" in again.output and "300 already in packs" in again.output
    _fresh_machine(monkeypatch, tmp_path, "reader")
    before = len(proxy_of(store_url).requests("GET"))
    out = Path(registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "out"))
    assert _tree(out) == files
    assert len(proxy_of(store_url).requests("GET")) - before < 15


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_an_interrupted_migration_loses_nothing_and_resumes(store_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.migrate as migrate_module
    import registry.pack_writer as pack_writer
    from registry.packs import PackBuilder

    monkeypatch.setenv("REGISTRY_FORMAT", "1")
    files = {f"{i}.bin": os.urandom(1000) for i in range(200)}
    _log("data", files, tmp_path)
    store = open_store()
    monkeypatch.setattr(pack_writer, "PackBuilder", lambda: PackBuilder(20_000))  # many small packs
    monkeypatch.setattr(migrate_module, "READ_BATCH", 20)
    reads = {"n": 0}
    real_read = store.blobs.read

    def failing_read(sha: str, what: str = "") -> bytes:
        reads["n"] += 1
        if reads["n"] > 120:
            raise OSError("disk on fire")
        return real_read(sha, what)

    monkeypatch.setattr(store.blobs, "read", failing_read)
    with pytest.raises(OSError):
        migrate(store, dry_run=False)
    assert len(_keys(keys.blob_prefix())) == 201  # nothing deleted before every pack was complete
    monkeypatch.setattr(store.blobs, "read", real_read)
    resumed = migrate(store, dry_run=False)
    assert resumed.already_packed >= 100 and resumed.to_pack == 200 - resumed.already_packed
    assert len(_keys(keys.blob_prefix())) == 1
    _fresh_machine(monkeypatch, tmp_path, "reader")
    assert _tree(Path(registry.Api(store_url).artifact("proj/data:latest").download(tmp_path / "o"))) == files


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_copy_and_bundles_carry_packed_versions(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry import copy_store, export_bundle, import_bundle

    files = _dataset(count=50)
    _log("data", files, tmp_path)
    local = str(tmp_path / "local-store")
    copy_store(store_url, local, projects=["proj"])
    _fresh_machine(monkeypatch, tmp_path, "reader")
    assert _tree(Path(registry.Api(local).artifact("proj/data:latest").download(tmp_path / "a"))) == files
    bundle = tmp_path / "b.tar"
    export_bundle(open_store(), bundle, projects=["proj"], addresses=[], default_project="proj")
    other = str(tmp_path / "imported")
    import_bundle(open_store(other), bundle)
    assert _tree(Path(registry.Api(other).artifact("proj/data:latest").download(tmp_path / "b"))) == files


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_an_unchanged_relog_builds_no_manifest_and_a_changed_one_does(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registry.publish as publish

    built: list[int] = []
    real = publish.build_manifest
    monkeypatch.setattr(publish, "build_manifest", lambda *a, **k: built.append(1) or real(*a, **k))
    source = tmp_path / "src"
    for path, data in _dataset(count=40).items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_bytes(data)

    def log() -> registry.Artifact:
        with registry.init(project="proj", job_type="build") as run:
            artifact = registry.Artifact("data", type="dataset")
            artifact.add_dir(str(source))
            return run.log_artifact(artifact)

    first = log()
    assert len(built) == 1
    again = log()  # the same files: the machine remembers their manifest's digest
    assert len(built) == 1 and again.version == first.version
    (source / "d1" / "f0001.bin").write_bytes(b"changed")
    changed = log()
    assert len(built) == 2 and changed.version == "v1"
    _fresh_machine(monkeypatch, tmp_path, "reader")
    out = Path(registry.Api(store_url).artifact("proj/data:v1").download(tmp_path / "out"))
    assert _tree(out) == _tree(source)


@pytest.mark.parametrize("store_url", ["moto", "seaweed"], indirect=True)
def test_a_corrupt_chunk_of_a_large_file_is_refused_and_nothing_is_placed(store_url: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A large file is written (into the cache and, as it is copied there, beside its
    destination) and hashed as its chunks stream in: one bad chunk fails the download before any
    byte of it is placed or kept in the cache, leaves no temp file behind, and is named with its
    pack (its chunks are not hashed on arrival, only the file; a file that fails is searched)."""
    monkeypatch.setenv("REGISTRY_LINK_MODE", "copy")
    model = random.Random(11).randbytes(5 * MiB + 321)
    logged = _log("ckpt", {"model.bin": model}, tmp_path)
    backend = open_store().backend
    key = keys.pack(logged.record.packs[0])
    body = bytearray(backend.read(key))
    at = body.find(model[3 * MiB : 3 * MiB + 64]) + 10  # inside one chunk, past the first ones
    body[at] ^= 1
    backend.write(key, bytes(body))
    (damaged,) = [chunk for chunk, (offset, length) in index_of_pack(bytes(body), key).items()
                  if offset <= at < offset + length]
    _fresh_machine(monkeypatch, tmp_path, "reader")
    with pytest.raises(IntegrityError, match=rf"chunk {damaged} \(file 'model\.bin'\) in {key} does not match"):
        registry.Api(store_url).artifact("proj/ckpt:latest").download(tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
    entry = open_store().cache.entry_path(hashlib.sha256(model).hexdigest())
    assert not entry.exists()
    assert not entry.parent.exists() or list(entry.parent.glob(".*.part")) == []  # no temp file left


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_a_large_file_is_read_once_when_added_and_only_its_new_chunks_when_logged(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a large file cuts it in the same read that hashes it; logging an edit of it then
    reads just the chunks the store lacks, each checked again as it is packed."""
    original = random.Random(12).randbytes(12 * MiB)
    _log("ckpt", {"model.bin": original}, tmp_path)
    edited = bytearray(original)
    edited[5 * MiB : 5 * MiB + KiB] = os.urandom(KiB)
    source = tmp_path / "edited"
    source.mkdir()
    (source / "model.bin").write_bytes(edited)
    cuts: list[Path] = []
    real_cut = chunking.chunk_file
    monkeypatch.setattr(chunking, "chunk_file", lambda path, **kw: cuts.append(path) or real_cut(path, **kw))
    read: list[int] = []
    real_iter = chunking.iter_chunk_bytes

    def counting_iter(path, chunks, *, only=None):
        for chunk_id, data in real_iter(path, chunks, only=only):
            read.append(len(data))
            yield chunk_id, data

    monkeypatch.setattr(chunking, "iter_chunk_bytes", counting_iter)
    with registry.init(project="proj", job_type="build") as run:
        artifact = registry.Artifact("ckpt", type="dataset")
        artifact.add_dir(str(source))
        assert cuts == [source / "model.bin"]  # cut while added, with its sha256
        run.log_artifact(artifact)
    assert cuts == [source / "model.bin"]  # and not again when logged
    assert 0 < sum(read) < 3 * MiB, f"{sum(read)} bytes read back to pack an edit of 1 KiB"
    _fresh_machine(monkeypatch, tmp_path, "reader")
    out = Path(registry.Api(store_url).artifact("proj/ckpt:latest").download(tmp_path / "out"))
    assert (out / "model.bin").read_bytes() == bytes(edited)


@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_chunks_that_do_not_add_up_to_the_files_sha256_are_refused(store_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk matches its id, but the file hashed in order as they land does not match the
    manifest's sha256: nothing becomes a cache entry."""
    model = random.Random(13).randbytes(4 * MiB + 5)
    logged = _log("ckpt", {"model.bin": model}, tmp_path)
    _fresh_machine(monkeypatch, tmp_path, "reader")
    store = open_store()
    (entry,) = version_entries(store, logged.record)
    lying = entry.replace(sha256=hashlib.sha256(b"something else").hexdigest())
    reader = PackedReader(store.backend, store.pack_indexes, store.cache)
    with pytest.raises(IntegrityError, match="do not add up"):
        reader.fetch([lying], hints=logged.record.packs or ())
    for sha in (entry.sha256, lying.sha256):
        path = store.cache.entry_path(sha)
        assert not path.exists() and (not path.parent.exists() or list(path.parent.glob(".*.part")) == [])
    reader.fetch([entry], hints=logged.record.packs or ())  # the honest entry assembles fine
    assert store.cache.entry_path(entry.sha256).read_bytes() == model


@pytest.mark.parametrize("link_mode", ["copy", "hardlink"])
@pytest.mark.parametrize("store_url", ["moto"], indirect=True)
def test_a_large_file_lands_in_the_cache_and_its_destination_in_one_pass(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link_mode: str) -> None:
    """In copy mode the chunks are written to the destination as they land (nothing is copied out
    of the cache afterwards); either way the cache entry is complete and the placed file its own
    (copy) or the entry itself (hardlink). Its chunks are not hashed on arrival: the file's own
    sha256, in one pass, checks every byte."""
    model = random.Random(14).randbytes(4 * MiB + 77)
    _log("ckpt", {"model.bin": model, "copy/model.bin": model}, tmp_path)
    _fresh_machine(monkeypatch, tmp_path, "reader")
    monkeypatch.setenv("REGISTRY_LINK_MODE", link_mode)
    copied: list[Path] = []
    real_copy = placement.copy_file
    monkeypatch.setattr(placement, "copy_file", lambda source, dest: copied.append(dest) or real_copy(source, dest))
    chunk_checks: list[int] = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(packs, "hashlib", SimpleNamespace(
        sha256=lambda data=b"": chunk_checks.append(len(data)) or real_sha256(data)))
    out = Path(registry.Api(store_url).artifact("proj/ckpt:latest").download(tmp_path / "out"))
    assert sum(chunk_checks) < 64 * KiB  # pack index footers only: not a chunk (64 KiB at least)
    assert _tree(out) == {"model.bin": model, "copy/model.bin": model}  # no temp file left either
    entry = open_store().cache.entry_path(hashlib.sha256(model).hexdigest())
    assert entry.read_bytes() == model
    inodes = {os.stat(out / name).st_ino for name in ("model.bin", "copy/model.bin")}
    if link_mode == "copy":
        assert os.stat(entry).st_ino not in inodes and len(inodes) == 2
        assert len(copied) == 1  # the second destination is copied from the cache; the first was written
    else:
        assert inodes == {os.stat(entry).st_ino} and copied == []


@pytest.mark.parametrize("store_url", ["seaweed-proxied"], indirect=True)
def test_a_writer_never_fetches_back_the_indexes_of_packs_it_wrote(store_url: str, tmp_path: Path) -> None:
    """After its packs are uploaded, checking which manifest pages the store holds lists the
    indexes: those of the writer's own packs are known already, so none is fetched."""
    proxy = proxy_of(store_url)
    before = len(proxy.requests("GET"))
    logged = _log("big", {"model.bin": random.Random(15).randbytes(40 * MiB)}, tmp_path)
    assert len(logged.record.packs or ()) >= 3
    index_gets = [r.path for r in proxy.requests("GET")[before:] if f"/{keys.pack_index_prefix()}" in r.path
                  and "list-type" not in r.path]
    assert index_gets == []


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_pull_of_a_path_prefix_reads_only_the_pages_that_can_hold_it(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``registry pull --path-prefix`` of a million-file version must not read every leaf (its
    progress total once did): small page rules make 300 files span many leaves."""
    from click.testing import CliRunner

    from registry.cache import Cache
    from registry.cli.group import cli
    from registry.manifest_pages import ManifestBuilder

    for rule, value in {"LEAF_BITS": 2, "INNER_BITS": 1, "LEAF_CAP": 8, "INNER_CAP": 4}.items():
        monkeypatch.setattr(ManifestBuilder, rule, value)
    monkeypatch.setattr(filelists, "KEEP_PAGES_MAX_FILES", 100)  # as a version too big to keep offline
    files = {f"d{i % 30:02d}/f{i:04d}.bin": os.urandom(20) for i in range(300)}
    logged = _log("many", files, tmp_path)
    _fresh_machine(monkeypatch, tmp_path, "reader")
    leaves = _leaves(logged)
    read: list[str] = []
    ensure = Cache.ensure

    def counted(self: Cache, sha256: str, *args: object, **kwargs: object) -> Path:
        read.append(sha256)
        return ensure(self, sha256, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Cache, "ensure", counted)
    result = CliRunner().invoke(cli, ["pull", "proj/many:latest", "-d", str(tmp_path / "out"), "--path-prefix", "d07/"])
    assert result.exit_code == 0, result.output
    assert _tree(tmp_path / "out") == {p: b for p, b in files.items() if p.startswith("d07/")}
    assert len(leaves) > 40 and len(set(read) & leaves) < len(leaves) / 4


def _leaves(art: registry.Artifact) -> set[str]:
    from registry.filelists import page_reader
    from registry.manifest_pages import page_digests

    read = page_reader(open_store(), art.record)
    return {d for d in page_digests(read, art.record.digest) if b'"kind":"leaf"' in read(d)}


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_pages_beyond_the_memory_budget_wait_on_disk_and_are_all_sent(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A million-file version's pages (~110 MB) are spooled to disk until uploaded: with no
    budget at all, every page takes that path, and the version still reads back whole."""
    from registry import page_spool

    spooled: list[Path] = []
    put = page_spool.PageSpool.put

    def watched(self: page_spool.PageSpool, sha256: str, body: bytes) -> None:
        put(self, sha256, body)
        held = self.pages[sha256]
        if isinstance(held, Path):
            spooled.append(held)

    monkeypatch.setattr(page_spool, "MEMORY_BUDGET", 0)
    monkeypatch.setattr(page_spool.PageSpool, "put", watched)
    files = _dataset(count=120)
    _log("spooled", files, tmp_path)
    assert spooled and not any(path.exists() for path in spooled)  # sent, then the temp directory went
    _fresh_machine(monkeypatch, tmp_path, "reader")
    out = Path(registry.Api(store_url).artifact("proj/spooled:latest").download(tmp_path / "out"))
    assert _tree(out) == files


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_one_changed_file_uploads_one_manifest_page_per_level(store_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Logged through the store, not just built: re-logging a version with one file changed
    uploads the leaf that lists it and the pages above it, nothing else of the file list."""
    import json

    from registry.manifest_pages import ManifestBuilder

    for rule, value in {"LEAF_BITS": 2, "INNER_BITS": 1, "LEAF_CAP": 16, "INNER_CAP": 4}.items():
        monkeypatch.setattr(ManifestBuilder, rule, value)  # small pages: 600 files make a deep tree
    files = {f"d{i % 6}/f{i:04d}.txt": f"file {i}".encode() for i in range(600)}
    first = _log("data", files, tmp_path)
    store = open_store()

    def page(digest: str) -> dict:
        return json.loads(store.backend.read(keys.blob(digest)))

    contents = {keys.blob(hashlib.sha256(data).hexdigest()) for data in [*files.values(), b"changed"]}

    def manifest_pages() -> set[str]:  # a local store keeps small files whole, as blobs too
        return set(_keys(keys.blob_prefix())) - contents

    pages = manifest_pages()
    levels = page(first.digest)["level"] + 1 if page(first.digest)["kind"] == "inner" else 1
    assert levels >= 4 and len(pages) > 20 * levels
    files["d3/f0303.txt"] = b"changed"
    second = _log("data", files, tmp_path)
    new = manifest_pages() - pages
    assert second.version == "v1" and len(new) == levels  # the root among them: a new digest
    assert keys.blob(second.digest) in new
    assert all(page("".join(key.split("/")[-2:]))["kind"] in ("leaf", "inner") for key in new)
