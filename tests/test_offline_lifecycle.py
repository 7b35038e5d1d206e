"""Offline mode and ``registry sync`` meet the lifecycle: registry addresses resolve offline from
what was seen, alias moves are audited when sync publishes them, deletions are never undone."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import log_files
from test_offline import REAL_BACKENDS, run_machine, seen_online, sync_as

import registry


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_registry_addresses_resolve_offline_from_what_was_seen(store_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = log_files("convnet", {"weights.bin": b"trained"}, project="team-a", type="model")
    with registry.init(project="team-a", job_type="promote") as run:
        run.link_artifact(source, "registry/mnist", aliases=["production"])
    machine = tmp_path / "laptop"
    seen_online(machine, monkeypatch, "registry/mnist:production")

    offline = run_machine(store_url, machine, "use-model", "registry/mnist:production")

    assert offline == {"qualified_name": "registry/mnist:v0", "source": "team-a/convnet:v0",
                       "files": ["weights.bin"], "model_bytes": "trained"}
    sync_as(machine, monkeypatch)  # the offline run's use is published against the link
    link = registry.Api(store_url).artifact("registry/mnist:production")
    assert [r.record.job_type for r in link.used_by()] == ["evaluate"]


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_an_alias_moved_offline_is_audited_by_sync_with_the_real_numbers(store_url: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("data", {"payload.txt": b"v0"}, aliases=["best"])
    machine = tmp_path / "laptop"
    seen_online(machine, monkeypatch, "proj/data:best")
    run_machine(store_url, machine, "log", "data", "1", "offline")  # outbox v1 (best), the store's v2
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "colleague"))
    log_files("data", {"payload.txt": b"colleague"})  # the store's v1: the outbox's v1 becomes v2
    api = registry.Api(store_url)
    assert [e.action for e in api.audit_trail("proj/data")] == ["alias.set"]  # nothing sent offline

    report = sync_as(machine, monkeypatch)

    assert report.aliases == ["proj/data:best -> v2"] and not report.conflicts
    *_, moved = api.audit_trail("proj/data")
    assert (moved.action, moved.alias, moved.subject, moved.before, moved.after) == \
        ("alias.set", "best", "proj/data:v2", "v0", "v2")
    assert len(api.audit_trail("proj/data")) == 2


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_sync_never_revives_or_reuses_a_deleted_version(store_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("data", {"payload.txt": b"v0"})
    log_files("data", {"payload.txt": b"v1"})
    machine = tmp_path / "laptop"
    seen_online(machine, monkeypatch, "proj/data:v1")
    run_machine(store_url, machine, "log", "data", "1", "offline")  # a new version, numbered v2 offline
    run_machine(store_url, machine, "alias", "proj/data:v1", "best")  # best back onto v1, as seen
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "colleague"))
    api = registry.Api(store_url)
    api.artifact("proj/data:v1").delete()  # meanwhile, in the store

    report = sync_as(machine, monkeypatch)

    assert report.conflicts == ["alias proj/data:best was not moved: v1 was deleted in the store "
                                "(a deletion is never undone)"]
    assert 1 not in api.aliases("proj/data")
    with pytest.raises(registry.NotFoundError, match="deleted"):
        api.artifact("proj/data:v1")
    assert api.artifact("proj/data:latest").version == "v2"  # the next number; v1 is not reused
    assert api.version_numbers("proj/data") == [0, 2]  # v1 stays deleted


def test_lifecycle_changes_are_refused_offline_and_nothing_is_logged(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_URL", str(tmp_path / "store"))
    log_files("data", {"payload.txt": b"v0"})
    registry.Api().artifact("proj/data:v0")  # seen online
    offline = registry.Api(mode="offline")
    art = offline.artifact("proj/data:v0")
    art.tags = ["offline-tag"]
    with pytest.raises(registry.StorageError, match="not offline"):
        art.save()
    with pytest.raises(registry.StorageError, match="not offline"):
        offline.artifact("proj/data:v0").delete()
    with registry.init(project="proj", mode="offline") as run:
        draft = registry.Artifact("tagged", type="dataset")
        draft.add_file(__file__)
        with pytest.raises(registry.StorageError, match="tagging"):
            run.log_artifact(draft, tags=["x"])
    assert registry.sync().versions == []
