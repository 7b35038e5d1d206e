"""External references (``Artifact.add_reference``) on a local and a SeaweedFS store.

The referenced objects live in other buckets of the same SeaweedFS (one with versioning on), in
a directory (``file://``) and behind a loopback ``http.server``. Each test proves a promise:
nothing is copied into the store, the file list records what the source was, a download gives
the logged bytes, and a source that changed since logging is an ``IntegrityError`` naming the
file (or, on a versioned bucket, the recorded version is fetched instead).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import pick_ports

import registry
from registry import keys
from registry.hashing import sha256_bytes
from registry.store import open_store

PLAIN_BUCKET = "refs-plain"
VERSIONED_BUCKET = "refs-versioned"


@pytest.fixture(scope="session")
def ref_buckets(seaweed) -> dict[str, str]:
    """Two buckets beside the store's: one plain, one with versioning on."""
    seaweed.make_bucket(PLAIN_BUCKET)
    seaweed.make_bucket(VERSIONED_BUCKET)
    seaweed.client().put_bucket_versioning(Bucket=VERSIONED_BUCKET,
                                           VersioningConfiguration={"Status": "Enabled"})
    return {"plain": PLAIN_BUCKET, "versioned": VERSIONED_BUCKET}


@pytest.fixture(params=["local", "seaweed"])
def ref_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seaweed) -> str:
    """A fresh store (local directory or a SeaweedFS bucket), with the S3 credentials of the
    SeaweedFS that also holds the referenced buckets."""
    for key, value in seaweed.env().items():
        monkeypatch.setenv(key, value)
    if request.param == "local":
        url = str(tmp_path / "store")
    else:
        url = f"s3://{request.getfixturevalue('seaweed_bucket')}/{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("REGISTRY_URL", url)
    return url


@pytest.fixture
def s3(seaweed, ref_buckets):
    return seaweed.client()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served by a loopback ``http.server`` (port in REGISTRY_TEST_PORTS); (dir, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", pick_ports(1, grpc=False)[0]), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def log(artifact: registry.Artifact) -> registry.Artifact:
    with registry.init(project="refs", job_type="log") as run:
        run.log_artifact(artifact)
    return artifact


def fetch(name: str, root: Path) -> Path:
    return Path(registry.Api().artifact(f"refs/{name}:latest").download(root))


def unique_prefix() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def stored_blobs(url: str) -> set[str]:
    """sha256 of every blob in the store."""
    return {keys.sha_of_blob_key(info.key) for info in open_store(url).backend.list(keys.blob_prefix())}


@pytest.mark.parametrize("checksum", [True, False])
def test_s3_prefix_is_listed_not_copied_and_downloads_its_objects(ref_store: str, s3, checksum: bool,
                                                                   tmp_path: Path) -> None:
    prefix = unique_prefix()
    contents = {"a.txt": b"alpha", "sub/b.bin": b"beta" * 1000, "sub/c.txt": b"gamma"}
    for rel, body in contents.items():
        s3.put_object(Bucket=PLAIN_BUCKET, Key=f"{prefix}/{rel}", Body=body)
    art = registry.Artifact("s3-data", type="dataset")
    added = art.add_reference(f"s3://{PLAIN_BUCKET}/{prefix}", name="data", checksum=checksum)
    assert sorted(f.path for f in added) == [f"data/{rel}" for rel in sorted(contents)]
    log(art)

    entries = {e.path: e for e in art.file_list().files}
    for rel, body in contents.items():
        entry = entries[f"data/{rel}"]
        assert entry.ref is not None and entry.ref.uri == f"s3://{PLAIN_BUCKET}/{prefix}/{rel}"
        assert entry.size == len(body) and entry.ref.etag and entry.ref.version_id is None
        assert (entry.sha256 == sha256_bytes(body)) is checksum
    assert stored_blobs(ref_store) == {art.digest}  # only the file list itself: nothing copied in
    listed = open_store().backend.read(keys.blob(art.digest))  # the digest is still the file list's hash
    assert sha256_bytes(listed) == art.digest and b"data/sub/b.bin" in listed

    root = fetch("s3-data", tmp_path / "dl")
    assert {rel: (root / "data" / rel).read_bytes() for rel in contents} == contents
    art.verify(root)


@pytest.mark.parametrize("checksum", [True, False])
def test_changed_s3_source_is_an_integrity_error_naming_the_file(ref_store: str, s3, checksum: bool,
                                                                  tmp_path: Path) -> None:
    key = f"{unique_prefix()}/weights.bin"
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"v1 weights")
    art = registry.Artifact("s3-model", type="model")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{key}", checksum=checksum)
    log(art)
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"v2 weights")  # same size, other bytes

    with pytest.raises(registry.IntegrityError, match="reference 'weights.bin'.*changed since it was logged"):
        fetch("s3-model", tmp_path / "dl")
    assert not (tmp_path / "dl" / "weights.bin").exists()
    with pytest.raises(registry.IntegrityError, match="weights.bin"):
        registry.Api().artifact("refs/s3-model:latest").verify()


def test_versioned_bucket_gives_the_recorded_version(ref_store: str, s3, tmp_path: Path) -> None:
    key = f"{unique_prefix()}/labels.csv"
    first = s3.put_object(Bucket=VERSIONED_BUCKET, Key=key, Body=b"id,label\n1,cat\n")
    art = registry.Artifact("labels", type="dataset")
    art.add_reference(f"s3://{VERSIONED_BUCKET}/{key}")
    log(art)
    assert art.file_list().files[0].ref.version_id == first["VersionId"]
    s3.put_object(Bucket=VERSIONED_BUCKET, Key=key, Body=b"id,label\n1,dog\n2,cow\n")

    root = fetch("labels", tmp_path / "dl")
    assert (root / "labels.csv").read_bytes() == b"id,label\n1,cat\n"

    pinned = registry.Artifact("labels-pinned", type="dataset")  # W&B's ?versionId= form
    pinned.add_reference(f"s3://{VERSIONED_BUCKET}/{key}?versionId={first['VersionId']}", name="old.csv")
    log(pinned)
    assert (fetch("labels-pinned", tmp_path / "dl2") / "old.csv").read_bytes() == b"id,label\n1,cat\n"


def test_prefix_over_max_objects_is_refused_whole(ref_store: str, s3) -> None:
    prefix = unique_prefix()
    for i in range(3):
        s3.put_object(Bucket=PLAIN_BUCKET, Key=f"{prefix}/{i}.txt", Body=b"x")
    art = registry.Artifact("too-many", type="dataset")
    with pytest.raises(registry.InvalidNameError, match="more than max_objects=2 objects; nothing was added"):
        art.add_reference(f"s3://{PLAIN_BUCKET}/{prefix}/", max_objects=2)
    assert len(art.draft) == 0
    assert len(art.add_reference(f"s3://{PLAIN_BUCKET}/{prefix}/", max_objects=3)) == 3


def test_reference_bucket_at_its_own_endpoint(ref_store: str, s3, seaweed, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """REGISTRY_REFERENCE_ENDPOINTS reaches a referenced bucket served elsewhere than AWS_ENDPOINT_URL."""
    key = f"{unique_prefix()}/x.txt"
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"elsewhere")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{pick_ports(1, grpc=False)[0]}")  # nothing there
    monkeypatch.setenv("REGISTRY_REFERENCE_ENDPOINTS", f"{PLAIN_BUCKET}={seaweed.endpoint_url}")
    if ref_store.startswith("s3://"):
        monkeypatch.setenv("REGISTRY_REFERENCE_ENDPOINTS",
                           f"{PLAIN_BUCKET}={seaweed.endpoint_url},other=http://10.0.0.1:1")
        monkeypatch.setenv("AWS_ENDPOINT_URL", seaweed.endpoint_url)  # the store itself must stay reachable
    art = registry.Artifact("elsewhere", type="dataset")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{key}")
    log(art)
    assert (fetch("elsewhere", tmp_path / "dl") / "x.txt").read_bytes() == b"elsewhere"


@pytest.mark.parametrize("checksum", [True, False])
def test_file_references(ref_store: str, tmp_path: Path, checksum: bool) -> None:
    source = tmp_path / "shared"
    (source / "deep").mkdir(parents=True)
    (source / "one.txt").write_bytes(b"one")
    (source / "deep" / "two.txt").write_bytes(b"two")
    art = registry.Artifact("files", type="dataset")
    art.add_reference(source.as_uri(), checksum=checksum)
    log(art)
    assert stored_blobs(ref_store) == {art.digest}  # only the file list itself
    root = fetch("files", tmp_path / "dl")
    assert (root / "deep" / "two.txt").read_bytes() == b"two" and (root / "one.txt").read_bytes() == b"one"

    shutil.rmtree(root)  # else its verified copies would serve the next download (tested below)
    (source / "deep" / "two.txt").write_bytes(b"TWO!")
    os.utime(source / "deep" / "two.txt", (1_000_000, 1_000_000))
    with pytest.raises(registry.IntegrityError, match="reference 'deep/two.txt'"):
        fetch("files", tmp_path / "dl2")
    assert not (tmp_path / "dl2" / "deep" / "two.txt").exists()


@pytest.mark.parametrize("checksum", [True, False])
def test_http_references(ref_store: str, http_root: tuple[Path, str], tmp_path: Path, checksum: bool) -> None:
    served, base = http_root
    (served / "labels.json").write_text(json.dumps({"0": "cat"}))
    art = registry.Artifact("web", type="dataset")
    art.add_reference(f"{base}/labels.json", checksum=checksum)
    log(art)
    entry = art.file_list().files[0]
    assert entry.ref is not None and entry.ref.last_modified and entry.size == len('{"0": "cat"}')
    assert (entry.sha256 == sha256_bytes(b'{"0": "cat"}')) is checksum
    assert json.loads((fetch("web", tmp_path / "dl") / "labels.json").read_text()) == {"0": "cat"}
    shutil.rmtree(tmp_path / "dl")

    (served / "labels.json").write_text(json.dumps({"0": "dog"}))
    os.utime(served / "labels.json", (2_000_000, 2_000_000))
    with pytest.raises(registry.IntegrityError, match="reference 'labels.json'"):
        fetch("web", tmp_path / "dl2")


def test_same_references_again_make_no_new_version_and_a_changed_source_does(ref_store: str, s3) -> None:
    key = f"{unique_prefix()}/a.txt"
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"a")
    uri = f"s3://{PLAIN_BUCKET}/{key}"

    def log_reference() -> registry.Artifact:
        art = registry.Artifact("repeat", type="dataset")
        art.add_reference(uri, checksum=False)
        return log(art)

    first, again = log_reference(), log_reference()
    assert again.created is False and again.version == first.version
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"b")
    changed = log_reference()
    assert changed.created and changed.version == "v1" and changed.digest != first.digest


def test_references_mix_with_stored_files_and_carry_over_to_new_drafts(ref_store: str, s3, tmp_path: Path) -> None:
    key = f"{unique_prefix()}/big.bin"
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"B" * 5000)
    local = tmp_path / "config.json"
    local.write_text("{}")
    art = registry.Artifact("mixed", type="model")
    art.add_file(local)
    art.add_reference(f"s3://{PLAIN_BUCKET}/{key}")
    log(art)
    plain = [e for e in art.file_list().files if e.path == "config.json"][0]
    assert plain.ref is None and "ref" not in plain.to_json()  # old entries keep their bytes

    draft = registry.Api().artifact("refs/mixed:latest").new_draft()
    draft.remove("config.json")
    log(draft)
    assert [(f.path, f.ref) for f in draft.files()] == [("big.bin", f"s3://{PLAIN_BUCKET}/{key}")]
    root = Path(registry.Api().artifact("refs/mixed:v0").checkout(tmp_path / "co"))
    (root / "stray.txt").write_text("x")
    registry.Api().artifact("refs/mixed:v1").checkout(root)
    assert sorted(p.name for p in root.iterdir()) == ["big.bin"]


def test_bad_reference_uris_are_refused_in_one_line(ref_store: str) -> None:
    art = registry.Artifact("bad", type="dataset")
    for uri, message in [
        ("ftp://host/x", "scheme 'ftp' is not one of"),
        ("https://user:secret@example.org/x", "carries a credential"),
        ("https://example.org/x?X-Amz-Signature=abc", "carries a credential"),
        ("file://otherhost/data", "names host"),
    ]:
        with pytest.raises(registry.InvalidNameError, match=message) as raised:
            art.add_reference(uri)
        assert "secret" not in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(registry.NotFoundError, match="no such file"):
        art.add_reference("file:///no/such/path")


def test_cli_shows_and_pulls_references_with_progress(ref_store: str, s3, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    key = f"{unique_prefix()}/w.bin"
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"W" * 3000)
    art = registry.Artifact("cli-ref", type="model")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{key}")
    log(art)
    shown = CliRunner().invoke(cli, ["show", "refs/cli-ref:latest", "--json"], prog_name="registry")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["files"] == [
        {"path": "w.bin", "size": 3000, "sha256": sha256_bytes(b"W" * 3000), "ref": f"s3://{PLAIN_BUCKET}/{key}"}]
    text = CliRunner().invoke(cli, ["show", "refs/cli-ref:latest"], prog_name="registry")
    assert f"w.bin  -> s3://{PLAIN_BUCKET}/{key}" in text.output

    seen: list[int] = []
    report = registry.Api().artifact("refs/cli-ref:latest").pull(tmp_path / "dl", progress=lambda b, f: seen.append(b))
    assert report.placed == ["w.bin"] and sum(seen) == 3000
    again = registry.Api().artifact("refs/cli-ref:latest").pull(tmp_path / "dl")
    assert again.placed == [] and again.unchanged == ["w.bin"]  # checksummed and in place: nothing fetched
    pulled = CliRunner().invoke(cli, ["pull", "refs/cli-ref:latest", "-d", str(tmp_path / "cli"), "--json"],
                                prog_name="registry")
    assert pulled.exit_code == 0 and json.loads(pulled.output)["placed"] == ["w.bin"], pulled.output


def test_a_vanished_source_is_named_or_skipped_when_allowed(ref_store: str, s3, tmp_path: Path, caplog) -> None:
    prefix = unique_prefix()
    for name in ("keep.txt", "gone.txt"):
        s3.put_object(Bucket=PLAIN_BUCKET, Key=f"{prefix}/{name}", Body=name.encode())
    art = registry.Artifact("vanishing", type="dataset")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{prefix}/")
    log(art)
    s3.delete_object(Bucket=PLAIN_BUCKET, Key=f"{prefix}/gone.txt")
    with pytest.raises(registry.NotFoundError, match="reference 'gone.txt'.*does not exist"):
        fetch("vanishing", tmp_path / "strict")
    assert not (tmp_path / "strict" / "keep.txt").exists()  # nothing placed
    root = registry.Api().artifact("refs/vanishing:latest").download(tmp_path / "lenient",
                                                                     allow_missing_references=True)
    assert sorted(p.name for p in Path(root).iterdir()) == ["keep.txt"]
    assert "skipped 1 reference(s) whose source is gone: gone.txt" in caplog.text


def test_entries_without_references_keep_their_old_bytes() -> None:
    """A file list written before references existed parses, and serialises to the same bytes."""
    from registry.records import FileList

    old = ('{"files":[{"path":"a.txt","sha256":"' + "1" * 64 + '","size":3}],"schema":1}').encode()
    assert FileList.model_validate_json(old).to_bytes() == old


def test_ui_shows_a_reference_as_its_source_and_never_serves_it(ref_store: str, tmp_path: Path) -> None:
    pytest.importorskip("flask")
    from registry.ui import create_app

    odd = tmp_path / "shared <b>"
    odd.mkdir()
    (odd / "a.txt").write_text("a")
    art = registry.Artifact("ui-ref", type="dataset")
    art.add_reference((odd / "a.txt").as_uri())
    log(art)
    client = create_app(ref_store).test_client()
    html = client.get("/projects/refs/artifacts/ui-ref/v0?tab=files").get_data(as_text=True)
    assert f"{(odd / 'a.txt').as_uri()}</td>" in html and "shared <b>" not in html
    assert "/projects/refs/artifacts/ui-ref/v0/files/a.txt" not in html  # no download link
    response = client.get("/projects/refs/artifacts/ui-ref/v0/files/a.txt")
    assert response.status_code == 404 and b"is a reference" in response.get_data()


def test_s3_keys_are_taken_as_written(ref_store: str, s3, tmp_path: Path) -> None:
    """Keys holding spaces, '#', '%' or '?' are S3 keys, not URL syntax."""
    prefix = unique_prefix()
    odd = {"a b.txt": b"space", "c#d.txt": b"hash", "e%20f.txt": b"percent", "g?h.txt": b"question"}
    for rel, body in odd.items():
        s3.put_object(Bucket=PLAIN_BUCKET, Key=f"{prefix}/{rel}", Body=body)
    art = registry.Artifact("odd-keys", type="dataset")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{prefix}/")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{prefix}/c#d.txt", name="single/c#d.txt", checksum=False)
    log(art)
    root = fetch("odd-keys", tmp_path / "dl")
    assert {rel: (root / rel).read_bytes() for rel in odd} == odd
    assert (root / "single" / "c#d.txt").read_bytes() == b"hash"


def test_checksummed_bytes_already_on_this_machine_are_copied_not_fetched(ref_store: str, s3, tmp_path: Path) -> None:
    key = f"{unique_prefix()}/model.bin"
    s3.put_object(Bucket=PLAIN_BUCKET, Key=key, Body=b"M" * 4000)
    art = registry.Artifact("copied", type="model")
    art.add_reference(f"s3://{PLAIN_BUCKET}/{key}")
    log(art)
    first = registry.Api().artifact("refs/copied:latest").pull(tmp_path / "one")
    assert first.placed == ["model.bin"] and first.local_bytes == 0
    s3.delete_object(Bucket=PLAIN_BUCKET, Key=key)  # from now on, only the first download holds the bytes

    second = registry.Api().artifact("refs/copied:latest").pull(tmp_path / "two")
    assert second.placed == ["model.bin"] and second.local_bytes == 4000
    assert (tmp_path / "two" / "model.bin").read_bytes() == b"M" * 4000

    (tmp_path / "one" / "model.bin").write_bytes(b"edited")  # the local copies are verified, not trusted
    (tmp_path / "two" / "model.bin").unlink()
    with pytest.raises(registry.NotFoundError, match="reference 'model.bin'"):
        registry.Api().artifact("refs/copied:latest").pull(tmp_path / "three")


def test_cli_push_of_a_uri_logs_references(ref_store: str, s3, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    prefix = unique_prefix()
    for i in range(3):
        s3.put_object(Bucket=PLAIN_BUCKET, Key=f"{prefix}/{i}.txt", Body=b"%d" % i)
    uri = f"s3://{PLAIN_BUCKET}/{prefix}/"
    too_many = CliRunner().invoke(cli, ["push", uri, "refs/cli-pushed", "--type", "dataset", "--max-objects", "2"],
                                  prog_name="registry")
    assert too_many.exit_code == 2 and "more than max_objects=2" in too_many.output
    pushed = CliRunner().invoke(cli, ["push", uri, "refs/cli-pushed", "--type", "dataset", "--no-checksum",
                                      "--json"], prog_name="registry")
    assert pushed.exit_code == 0, pushed.output
    files = registry.Api().artifact("refs/cli-pushed:latest").files()
    assert [(f.path, f.ref) for f in files] == [(f"{i}.txt", f"{uri}{i}.txt") for i in range(3)]
    assert all(not f.entry.ref.checksum for f in files)
    assert stored_blobs(ref_store) == {registry.Api().artifact("refs/cli-pushed:latest").digest}
    missing = CliRunner().invoke(cli, ["push", str(tmp_path / "nope"), "refs/x", "--type", "d"], prog_name="registry")
    assert missing.exit_code == 2 and "does not exist" in missing.output
