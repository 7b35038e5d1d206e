"""``registry export`` / ``import``: carry a model and its lineage to a site with no network; hostile
bundles are refused before anything is written."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import registry
from registry.cli import cli
from servers import pick_ports
from store_builders import log_pipeline


@pytest.mark.parametrize("store_url", ["local", "seaweed"], indirect=True)
def test_export_import_round_trip_ends_in_a_verified_pull_on_a_third_machine(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log_pipeline()
    bundle = tmp_path / "carry" / "model.tar"
    bundle.parent.mkdir()
    exported = CliRunner().invoke(cli, ["export", "proj/model:best", "-o", str(bundle)])
    assert exported.exit_code == 0, exported.output
    # the air-gapped site: its own store and cache, and no way to reach the first store
    monkeypatch.setenv("REGISTRY_URL", str(tmp_path / "site-store"))
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "site-cache"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{pick_ports(1, grpc=False)[0]}")

    imported = CliRunner().invoke(cli, ["import", str(bundle)])
    assert imported.exit_code == 0, imported.output
    pulled = CliRunner().invoke(cli, ["pull", "proj/model:best", "-d", str(tmp_path / "model")])
    assert pulled.exit_code == 0, pulled.output

    api = registry.Api()
    model = api.artifact("proj/model:best")
    model.verify(tmp_path / "model")
    assert (tmp_path / "model" / "weights.bin").read_bytes() == b"weights "
    train = model.logged_by()
    assert train.record.job_type == "train" and train.history()[0]["loss"] == 0.25
    (image,) = train.image_shas
    assert train.image(image).startswith(b"\x89PNG")
    assert [a.qualified_name for a in train.used_artifacts()] == ["proj/raw:v0"]
    assert api.aliases("proj/raw") == {0: ["latest", "best"]}
    assert CliRunner().invoke(cli, ["--json", "import", str(bundle)]).exit_code == 0  # again: nothing new
    assert api.version_numbers("proj/model") == [0]


def _tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], manifest: bool = True) -> Path:
    with tarfile.open(path, "w") as tar:
        if manifest:
            body = json.dumps({"schema": 1, "kind": "registry-bundle", "source": "x", "addresses": [],
                               "created_at": "2026-01-01T00:00:00+00:00"}).encode()
            info = tarfile.TarInfo("bundle.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


GOOD_BLOB = "blobs/sha256/2c/f24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # "hello"
HOSTILE = {
    "parent": ([(_member("projects/../../evil.txt"), b"x")], "unsafe path"),
    "absolute": ([(_member("/tmp/evil.txt"), b"x")], "unsafe path"),
    "symlink": ([(_member("projects/p/link", tarfile.SYMTYPE, "/etc/passwd"), b"")], "not a regular file"),
    "hardlink": ([(_member("projects/p/hard", tarfile.LNKTYPE, "/etc/passwd"), b"")], "not a regular file"),
    "outside the store": ([(_member("etc/cron.d/job"), b"x")], "not part of a store"),
    "bad blob name": ([(_member("blobs/sha256/zz/nothex"), b"x")], "not part of a store"),
    "twice": ([(_member(GOOD_BLOB), b"hello"), (_member(GOOD_BLOB), b"hello")], "twice"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_bundles_are_refused_and_write_nothing(case: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    members, message = HOSTILE[case]
    bundle = _tar_with(tmp_path / "hostile.tar", members)
    monkeypatch.setenv("REGISTRY_URL", str(tmp_path / "site"))
    with pytest.raises(registry.InvalidNameError, match=message):
        registry.import_bundle(registry.Api().store, bundle)
    assert not (tmp_path / "site").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_a_bundle_with_a_corrupt_blob_or_no_manifest_is_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_URL", str(tmp_path / "site"))
    corrupt = _tar_with(tmp_path / "corrupt.tar", [(_member(GOOD_BLOB), b"not hello")])
    with pytest.raises(registry.IntegrityError, match="corrupt"):
        registry.import_bundle(registry.Api().store, corrupt)
    bare = _tar_with(tmp_path / "bare.tar", [(_member(GOOD_BLOB), b"hello")], manifest=False)
    with pytest.raises(registry.InvalidNameError, match="not a registry bundle"):
        registry.import_bundle(registry.Api().store, bare)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "junk.tar")])
    assert result.exit_code == 2 and "not a registry bundle" in result.output
    assert not (tmp_path / "site").exists()
