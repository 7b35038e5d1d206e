"""``registry copy`` and ``registry export/import`` carry the lifecycle: deletions (never undone),
tags/TTL/description, collection info, retention policies, registry links with their sources,
and the audit log."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import log_files

import registry
from registry import retention
from registry.cli import cli

SIDES = ["local", "seaweed"]


def records(url: str) -> dict[str, bytes]:
    """Every key under ``projects/`` byte for byte, except alias records (they hold their own time)."""
    backend = registry.Api(url).store.backend
    return {info.key: backend.read(info.key) for info in backend.list("projects/") if "/aliases/" not in info.key}


def audit_keys(url: str, prefix: str) -> set[str]:
    return {info.key for info in registry.Api(url).store.backend.list(prefix) if "/audit/" in info.key}


def build_source(store_url: str) -> None:
    """team-a/convnet v0..v3: v0 tagged with a TTL, v1 linked as registry/mnist:production,
    v3 deleted; a description on the collection, retention policies; an audit trail for each."""
    for i in range(4):
        log_files("convnet", {"w.bin": f"weights {i}".encode()}, project="team-a", type="model")
    api = registry.Api(store_url)
    v0 = api.artifact("team-a/convnet:v0")
    v0.tags, v0.ttl, v0.description = ["candidate"], timedelta(days=30), "first try"
    v0.save()
    with registry.init(project="team-a", job_type="promote") as run:
        run.link_artifact(api.artifact("team-a/convnet:v1"), "registry/mnist", aliases=["production"])
    collection = api.artifact_collection("model", "registry/mnist")
    collection.description = "MNIST classifiers"
    collection.save()
    retention.set_policy(api.store, "team-a", "convnet", keep_last=10)
    retention.set_policy(api.store, "team-a", None, keep_last=20)
    api.artifact("team-a/convnet:v3").delete()


@pytest.mark.parametrize("store_url", SIDES, indirect=True)
def test_copy_carries_deletions_annotations_links_and_the_audit_log(store_url: str, tmp_path: Path) -> None:
    build_source(store_url)
    mirror = f"{store_url}-mirror"

    first = registry.copy_store(store_url, mirror, addresses=["registry/mnist:production"])

    # the link resolves and downloads: its source (and the versions below it) came first
    link = registry.Api(mirror).artifact("registry/mnist:production")
    link.verify(link.download(tmp_path / "linked"))
    assert link.source_artifact.qualified_name == "team-a/convnet:v1"
    assert [a.qualified_name for a in link.source_artifact.linked_artifacts] == ["registry/mnist:v0"]
    assert registry.Api(mirror).artifact_collection("model", "registry/mnist").description == "MNIST classifiers"
    assert audit_keys(mirror, "projects/registry/") == audit_keys(store_url, "projects/registry/")
    assert sorted(first.copied) == ["registry/mnist:v0", "team-a/convnet:v0", "team-a/convnet:v1"]

    second = registry.copy_store(store_url, mirror, projects=["team-a", "registry"])

    assert second.deleted == ["team-a/convnet:v3"]  # it arrives deleted: never alive at the mirror
    assert records(mirror) == records(store_url)  # tombstones, annotations, policies, link index, audit
    api = registry.Api(mirror)
    with pytest.raises(registry.NotFoundError, match="deleted"):
        api.artifact("team-a/convnet:v3")
    assert api.artifact("team-a/convnet:latest").version == "v2"
    v0 = api.artifact("team-a/convnet:v0")
    assert (v0.tags, v0.ttl, v0.description) == (["candidate"], timedelta(days=30), "first try")
    assert retention.read_policy(api.store.backend, "team-a").keep_last == 20  # type: ignore[union-attr]
    assert [e.action for e in api.audit_trail("team-a/convnet")] == \
        [e.action for e in registry.Api(store_url).audit_trail("team-a/convnet")]

    again = registry.copy_store(store_url, mirror, projects=["team-a", "registry"])  # nothing left to do
    assert (again.copied, again.deleted, again.updated, again.audit) == ([], [], [], 0)


@pytest.mark.parametrize("store_url", SIDES, indirect=True)
def test_later_deletions_and_edits_travel_and_the_mirrors_own_deletions_stand(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    build_source(store_url)
    mirror = f"{store_url}-mirror"
    registry.copy_store(store_url, mirror, projects=["team-a", "registry"])
    source, dest = registry.Api(store_url), registry.Api(mirror)
    source.artifact("registry/mnist:production").unlink()  # then v1 may go
    source.artifact("team-a/convnet:v1").delete()
    edited = source.artifact("team-a/convnet:v0")
    edited.tags = ["released"]
    edited.save()
    source.set_alias("team-a/convnet:v2", "best")
    mine = dest.artifact("team-a/convnet:v0")
    mine.tags = ["mirror-only"]  # the source's edit wins
    mine.save()
    dest.artifact("team-a/convnet:v2").delete()  # deleted at the mirror only: stays deleted

    report = registry.copy_store(store_url, mirror, projects=["team-a", "registry"])

    assert sorted(report.deleted) == ["registry/mnist:v0", "team-a/convnet:v1"]
    assert report.kept_deleted == ["team-a/convnet:best"]
    with pytest.raises(registry.NotFoundError):
        dest.artifact("registry/mnist:production")  # the alias went with the unlink
    for gone in ("registry/mnist:v0", "team-a/convnet:v1", "team-a/convnet:v2"):
        with pytest.raises(registry.NotFoundError, match="deleted"):
            dest.artifact(gone)
    assert dest.artifact("team-a/convnet:v0").tags == ["released"]
    assert dest.artifact("team-a/convnet:latest").version == "v0"  # the newest version left there
    trail = [e.action for e in dest.audit_trail("team-a/convnet")]
    assert trail.count("delete") == 3 and "unlink" in trail  # both sides' entries, none lost
    monkeypatch.setenv("REGISTRY_URL", mirror)
    log_files("convnet", {"w.bin": b"new at the mirror"}, project="team-a", type="model")
    assert dest.artifact("team-a/convnet:latest").version == "v4"  # deleted numbers are never reused


def test_dry_run_copies_no_lifecycle_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_url = str(tmp_path / "store")
    monkeypatch.setenv("REGISTRY_URL", store_url)
    build_source(store_url)
    report = registry.copy_store(store_url, str(tmp_path / "mirror"), projects=["team-a"], dry_run=True)
    assert "team-a/convnet:v3" in report.copied and not (tmp_path / "mirror").exists()


@pytest.mark.parametrize("store_url", SIDES, indirect=True)
def test_a_bundle_of_a_registry_address_pulls_elsewhere_and_deletions_stay(store_url: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    build_source(store_url)
    registry.Api(store_url).artifact("team-a/convnet:v0").delete()  # below the link: travels deleted
    bundle = tmp_path / "mnist.tar"
    exported = CliRunner().invoke(cli, ["export", "registry/mnist:production", "-o", str(bundle)])
    assert exported.exit_code == 0, exported.output

    site = str(tmp_path / "air-gapped")
    monkeypatch.setenv("REGISTRY_URL", site)
    imported = CliRunner().invoke(cli, ["import", str(bundle)])
    assert imported.exit_code == 0, imported.output
    pulled = CliRunner().invoke(cli, ["pull", "registry/mnist:production", "--dir", str(tmp_path / "pulled")])
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "pulled" / "w.bin").read_bytes() == b"weights 1"

    api = registry.Api(site)
    with pytest.raises(registry.NotFoundError, match="deleted"):
        api.artifact("team-a/convnet:v0")
    assert api.artifact("team-a/convnet:v1").linked_artifacts[0].qualified_name == "registry/mnist:v0"
    assert [e.action for e in api.audit_trail("registry/mnist")] == ["link", "alias.set",
                                                                     "collection.description.set"]
    again = registry.import_bundle(api.store, bundle)  # importing twice changes nothing
    assert (again.copied, again.deleted, again.updated, again.audit) == ([], [], [], 0)


@pytest.mark.parametrize("dies_at", [2, 4, 5])  # convnet v1; the deleted v3 (its tombstone written); the link
def test_a_copy_interrupted_anywhere_resumes_and_no_deleted_version_is_ever_alive(
        dies_at: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    monkeypatch.setenv("REGISTRY_URL", src)
    build_source(src)
    calls = []
    original = registry.mirror._write_version

    def dies(*args):
        calls.append(args)
        if len(calls) == dies_at:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(registry.mirror, "_write_version", dies)
    with pytest.raises(KeyboardInterrupt):
        registry.copy_store(src, dst, projects=["team-a", "registry"])
    stopped = records(dst)
    v3 = "projects/team-a/artifacts/convnet/versions/v3.json"
    assert v3 not in stopped or "projects/team-a/artifacts/convnet/deleted/v3.json" in stopped
    assert not any(key.startswith("projects/registry/artifacts/mnist/versions/") for key in stopped) \
        or "projects/team-a/artifacts/convnet/linked-to/v1/registry--mnist.json" in stopped  # source first

    monkeypatch.setattr(registry.mirror, "_write_version", original)
    registry.copy_store(src, dst, projects=["team-a", "registry"])

    assert records(dst) == records(src)
    assert registry.Api(dst).artifact("registry/mnist:production").source_qualified_name == "team-a/convnet:v1"


def test_a_destination_whose_link_names_another_source_is_diverged(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    for url, project in ((src, "team-a"), (dst, "team-b")):  # the same contents, other sources
        monkeypatch.setenv("REGISTRY_URL", url)
        model = log_files("convnet", {"w.bin": b"same weights"}, project=project, type="model")
        with registry.init(project=project, job_type="promote") as run:
            run.link_artifact(model, "registry/mnist")
    before = records(dst)

    with pytest.raises(registry.mirror.DivergedError, match="a link to team-b/convnet:v0"):
        registry.copy_store(src, dst, addresses=["registry/mnist:v0"])
    assert records(dst) == before
