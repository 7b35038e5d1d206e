"""New versions from old ones without downloading them: new_draft(), incremental=True, checkout."""
from __future__ import annotations

from pathlib import Path

import pytest

import registry
from helpers import log_files
from registry.blobs import BlobStore
from registry.pack_writer import PackUploader


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sha256 of every file's bytes sent to the store (not the file lists): as a blob each,
    or (format 2 on S3) as a chunk put into a pack (a small file is one chunk, named by its sha256)."""
    sent: list[str] = []
    real_upload, real_add = BlobStore.upload, PackUploader.add

    def spy_upload(self, files, progress=None):
        sent.extend(files)
        return real_upload(self, files, progress=progress)

    def spy_add(self, chunk_id, data):
        if not self.holds(chunk_id):
            sent.append(chunk_id)
        return real_add(self, chunk_id, data)

    monkeypatch.setattr(BlobStore, "upload", spy_upload)
    monkeypatch.setattr(PackUploader, "add", spy_add)
    return sent


def test_new_draft_keeps_the_files_in_the_store_and_uploads_only_what_is_added(
    api: registry.Api, tmp_path: Path, uploads: list[str]
) -> None:
    log_files("data", {"a.txt": b"A" * 1000, "dir/b.txt": b"B" * 1000, "dir/c.txt": b"C"})
    uploads.clear()
    draft = api.artifact("proj/data:latest").new_draft()
    assert sorted(f.path for f in draft.files()) == ["a.txt", "dir/b.txt", "dir/c.txt"]
    (tmp_path / "d.txt").write_bytes(b"new file")
    draft.add_file(tmp_path / "d.txt")
    draft.remove("dir/c.txt")
    with registry.init(project="proj", job_type="edit") as run:
        logged = run.log_artifact(draft)
    assert logged.version == "v1" and len(uploads) == 1  # only d.txt's bytes went up
    assert {f.path for f in logged.files()} == {"a.txt", "dir/b.txt", "d.txt"}
    root = Path(logged.download(tmp_path / "out"))
    assert (root / "a.txt").read_bytes() == b"A" * 1000 and (root / "d.txt").read_bytes() == b"new file"


def test_incremental_adds_to_the_latest_version(api: registry.Api, tmp_path: Path, uploads: list[str]) -> None:
    log_files("shards", {"s0.bin": b"0" * 100, "s1.bin": b"1" * 100, "old/x.bin": b"x"})
    uploads.clear()
    (tmp_path / "s2.bin").write_bytes(b"2" * 100)
    (tmp_path / "s0.bin").write_bytes(b"zero again")
    with registry.init(project="proj", job_type="append") as run:
        art = registry.Artifact("shards", type="dataset", incremental=True)
        art.add_file(tmp_path / "s2.bin")
        art.add_file(tmp_path / "s0.bin")  # replaces the latest version's s0.bin
        art.remove("old")  # a directory of the latest version
        logged = run.log_artifact(art)
    assert sorted(uploads) == sorted(f.digest for f in logged.files() if f.path in ("s0.bin", "s2.bin"))
    contents = {f.path: f.size for f in logged.files()}
    assert contents == {"s0.bin": len(b"zero again"), "s1.bin": 100, "s2.bin": 100}
    assert api.artifact("proj/shards:v0").file_count == 3  # the old version is untouched


def test_incremental_refuses_to_remove_what_nobody_has(api: registry.Api) -> None:
    log_files("shards", {"s0.bin": b"0"})
    with registry.init(project="proj", job_type="append") as run:
        art = registry.Artifact("shards", type="dataset", incremental=True)
        art.remove("nope.bin")
        with pytest.raises(registry.NotFoundError, match="cannot remove nope.bin"):
            run.log_artifact(art)
    assert [v.version for v in api.artifact_versions("proj/shards")] == ["v0"]


def test_incremental_with_no_earlier_version_is_a_plain_first_version(api: registry.Api, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    with registry.init(project="proj", job_type="append") as run:
        art = registry.Artifact("fresh", type="dataset", incremental=True)
        art.add_file(tmp_path / "a.txt")
        assert run.log_artifact(art).version == "v0"


def test_checkout_get_path_and_named_files(api: registry.Api, tmp_path: Path) -> None:
    log_files("data", {"a.txt": b"A", "b.txt": b"B"})
    art = api.artifact("proj/data:latest")
    root = tmp_path / "co"
    root.mkdir()
    (root / "stray.txt").write_text("not in the version")
    assert Path(art.checkout(root)) == root
    assert sorted(p.name for p in root.iterdir()) == ["a.txt", "b.txt"]
    assert art.get_path("b.txt").digest == art.get_entry("b.txt").digest
    assert [f.path for f in art.files(names=["b.txt", "nope"], per_page=10)] == ["b.txt"]


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_a_kept_file_whose_blob_is_gone_is_named_and_nothing_is_logged(api: registry.Api, store_url: str) -> None:
    from registry import keys

    old = log_files("data", {"a.txt": b"A", "gone.txt": b"collected"})
    log_files("data", {"a.txt": b"A"})  # the latest version no longer holds gone.txt
    draft = api.artifact("proj/data:v0").new_draft()
    (Path(store_url) / keys.blob(old.get_entry("gone.txt").digest)).unlink()  # a damaged store
    with registry.init(project="proj", job_type="edit") as run:
        draft.remove("a.txt")
        with pytest.raises(registry.NotFoundError, match="no longer in the store: gone.txt"):
            run.log_artifact(draft)
    assert [v.version for v in api.artifact_versions("proj/data")] == ["v0", "v1"]


def test_incremental_builds_on_the_highest_version_even_when_latest_lags(api: registry.Api, tmp_path: Path) -> None:
    from registry import keys
    from registry.versions import read_alias

    log_files("data", {"a.txt": b"A"})
    log_files("data", {"a.txt": b"A", "b.txt": b"B"})
    store = api.store
    record = read_alias(store.backend, "proj", "data", "latest")
    assert record is not None
    body = record[0].model_copy(update={"version": 0}).to_bytes()  # a writer died before moving latest
    store.backend.write(keys.alias("proj", "data", "latest"), body)
    (tmp_path / "c.txt").write_text("C")
    with registry.init(project="proj", job_type="append") as run:
        art = registry.Artifact("data", type="dataset", incremental=True)
        art.add_file(tmp_path / "c.txt")
        logged = run.log_artifact(art)
    assert logged.version == "v2" and sorted(f.path for f in logged.files()) == ["a.txt", "b.txt", "c.txt"]


def test_an_incremental_draft_is_built_again_when_another_writer_commits_first(
    api: registry.Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registry.runs as runs_module

    log_files("data", {"a.txt": b"A"})
    real_publish = runs_module.publish
    raced: list[bool] = []

    def publish_after_a_rival(*args, **kwargs):
        if not raced:  # another writer commits b.txt between our read of the base and our commit
            raced.append(True)
            rival = runs_module.Run(api.store, "proj", "rival", None, None, None, None)  # not the active run
            other = registry.Artifact("data", type="dataset")
            for name, body in (("a.txt", b"A"), ("b.txt", b"B")):
                with other.new_file(name, mode="wb") as f:
                    f.write(body)
            rival.log_artifact(other)
            rival.finish()
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(runs_module, "publish", publish_after_a_rival)
    (tmp_path / "c.txt").write_text("C")
    run = registry.init(project="proj", job_type="append")
    art = registry.Artifact("data", type="dataset", incremental=True)
    art.add_file(tmp_path / "c.txt")
    logged = run.log_artifact(art)
    run.finish()
    assert raced and logged.version == "v2"
    assert sorted(f.path for f in logged.files()) == ["a.txt", "b.txt", "c.txt"]  # the rival's b.txt is kept
