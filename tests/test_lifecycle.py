"""A version's life after logging: delete (refused while aliased or linked), tags, TTL, edited
description and metadata beside the immutable record, retention policies, and gc afterwards."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import log_files
from store_contents import content_keys, holdings, objects_of

import registry
from registry import keys
from registry.cli import cli
from registry.gc import collect_garbage
from registry.hashing import sha256_bytes
from registry.retention import apply, plan, set_policy


def _cli(store_url: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), prog_name="registry", env={"REGISTRY_URL": store_url})
    assert result.exit_code == code, (args, result.output)
    return result.stdout


def test_delete_is_refused_while_a_user_alias_points_at_it(store_url: str) -> None:
    log_files("data", {"a": b"0"}, aliases=["best", "golden"])
    log_files("data", {"a": b"1"})
    api = registry.Api(store_url)
    v0 = api.artifact("proj/data:v0")
    with pytest.raises(registry.ConflictError, match="has aliases best, golden"):
        v0.delete()
    assert api.artifact("proj/data:best").version == "v0"  # nothing changed
    assert "has aliases" in CliRunner().invoke(cli, ["delete", "proj/data:v0"], env={"REGISTRY_URL": store_url}).output
    v0.delete(delete_aliases=True)
    for address in ("proj/data:v0", "proj/data:best", "proj/data:golden"):
        with pytest.raises(registry.NotFoundError):
            api.artifact(address)
    assert [a.version for a in api.artifact_versions("proj/data")] == ["v1"]


def test_a_deleted_latest_moves_latest_back_and_its_number_is_never_reused(store_url: str) -> None:
    for n in range(3):
        log_files("data", {"a": str(n).encode()})
    api = registry.Api(store_url)
    api.artifact("proj/data:v2").delete()
    assert api.artifact("proj/data:latest").version == "v1"
    assert api.version_numbers("proj/data") == [0, 1]
    assert [c.version_count for c in api.artifacts("proj")] == [2]
    again = log_files("data", {"a": b"2"})  # v2's contents again: a new version, not the deleted one
    assert (again.version, again.created) == ("v3", True)
    assert api.artifact("proj/data:latest").version == "v3"
    with pytest.raises(registry.NotFoundError, match="was deleted"):
        api.artifact("proj/data:v2")
    from registry.lifecycle import delete_version

    v2_record = api.store.backend.read(keys.version("proj", "data", 2))
    with pytest.raises(registry.NotFoundError, match="already deleted"):
        delete_version(api.store, registry.records.VersionRecord.model_validate_json(v2_record))


def test_gc_takes_a_deleted_versions_blobs_only_and_only_after_the_grace(store_url: str, tmp_path: Path) -> None:
    log_files("data", {"only-v0": b"gone soon", "shared": b"kept"})
    log_files("data", {"only-v1": b"stays", "shared": b"kept"})
    api = registry.Api(store_url)
    v0 = api.artifact("proj/data:v0")
    kept = objects_of(api.store, api.artifact("proj/data:v1").record)
    doomed = objects_of(api.store, v0.record) - kept
    # its file list goes; its own file's bytes go too: a blob, or their share of the pack they
    # share with "shared", which is then mostly dead and rewritten (the live chunk moves to a new pack)
    held = holdings(store_url)
    shared_pack = held[sha256_bytes(b"kept")] & held[sha256_bytes(b"gone soon")]
    assert keys.blob(v0.digest) in doomed and (shared_pack or keys.blob(sha256_bytes(b"gone soon")) in doomed)
    v0.delete()
    assert collect_garbage(api.store, grace_seconds=3600).deleted == []  # deleted just now: still protected
    report = collect_garbage(api.store, grace_seconds=0)
    assert {keys.pack(pack) for pack in report.repacked} == shared_pack  # only it was mostly dead
    rewritten = {key for pack in report.repacked for key in (keys.pack(pack), keys.pack_index(pack))}
    assert set(report.deleted) == doomed | rewritten
    left = content_keys(store_url)
    assert not (doomed | rewritten) & left and kept - rewritten <= left
    assert objects_of(api.store, api.artifact("proj/data:v1").record) <= left
    v1 = api.artifact("proj/data:v1")
    v1.verify(v1.download(tmp_path / "v1"))


def test_deleting_a_linked_version_is_refused_until_it_is_unlinked(store_url: str) -> None:
    model = log_files("convnet", {"w": b"w"}, type="model")
    link = model.link("registry/mnist", aliases=["production"])
    with pytest.raises(registry.ConflictError, match="linked from registry/mnist:v0"):
        model.delete(delete_aliases=True)
    link.delete()  # a link's delete unlinks it, as in W&B
    model.delete()
    with pytest.raises(registry.NotFoundError):
        registry.Api(store_url).artifact("proj/convnet:v0")


def test_tags_follow_wandb_syntax_are_saved_and_listed(store_url: str) -> None:
    art = log_files("data", {"a": b"0"})
    log_files("data", {"a": b"1"})
    for bad in ("a,b", " lead", "trail ", "semi;colon", "tab\there", "", "x" * 129):
        with pytest.raises(registry.InvalidNameError, match="invalid tag"):
            art.tags = [bad]
    art.tags = ["prod ready", "a-b_c", "prod ready"]
    assert art.tags == ["prod ready", "a-b_c"]
    art.save()
    api = registry.Api(store_url)
    assert api.artifact("proj/data:v0").tags == ["prod ready", "a-b_c"]
    assert api.artifact("proj/data:v1").tags == []
    assert [a.qualified_name for a in api.tagged("proj", "a-b_c")] == ["proj/data:v0"]
    listed = json.loads(_cli(store_url, "ls", "proj/data", "--tag", "prod ready", "--json"))
    assert [(v["address"], v["tags"]) for v in listed] == [("proj/data:v0", ["prod ready", "a-b_c"])]
    assert _cli(store_url, "tag", "proj/data:v1", "new", "--rm", "none").strip() == "new"
    assert json.loads(_cli(store_url, "ls", "proj", "--tag", "new", "--json"))[0]["address"] == "proj/data:v1"


def test_edits_live_beside_the_immutable_record(store_url: str) -> None:
    art = log_files("data", {"a": b"0"}, metadata={"rows": 1})
    record_key = keys.version("proj", "data", 0)
    api = registry.Api(store_url)
    before = api.store.backend.read(record_key)
    art.description = "cleaned"
    art.metadata["rows"] = 2
    art.ttl = timedelta(days=30)
    art.save()
    assert api.store.backend.read(record_key) == before  # the version record never changes
    again = api.artifact("proj/data:v0")
    assert (again.description, again.metadata, again.ttl) == ("cleaned", {"rows": 2}, timedelta(days=30))
    assert json.loads(_cli(store_url, "show", "proj/data:v0", "--json"))["description"] == "cleaned"
    with pytest.raises(registry.InvalidNameError, match="positive"):
        again.ttl = timedelta(seconds=-5)
    again.ttl = None
    again.save()
    assert registry.Api(store_url).artifact("proj/data:v0").ttl is None


def test_a_ttl_set_on_a_draft_is_the_versions_and_retires_it_unless_aliased(store_url: str) -> None:
    with registry.init(project="proj", job_type="build") as run:
        for n in range(3):
            art = registry.Artifact("data", type="dataset")
            with art.new_file("a", mode="wb") as f:
                f.write(str(n).encode())
            art.ttl = timedelta(days=1)
            run.log_artifact(art, aliases=["pinned"] if n == 1 else None)
    api = registry.Api(store_url)
    assert api.artifact("proj/data:v0").ttl == timedelta(days=1)
    assert plan(api.store).retired == []  # not expired yet
    later = datetime.now(timezone.utc) + timedelta(days=2)
    report = apply(api.store, at=later)
    assert [(r.address, r.reason) for r in report.retired] == [("proj/data:v0", "ttl"), ("proj/data:v2", "ttl")]
    assert report.kept == [("proj/data:v1", "aliased (pinned)")]
    assert api.version_numbers("proj/data") == [1]


def test_retention_dry_run_lists_exactly_what_apply_deletes(store_url: str) -> None:
    for n in range(6):
        log_files("data", {"a": str(n).encode()}, aliases=["pinned"] if n == 1 else None)
    log_files("other", {"b": b"b"})
    api = registry.Api(store_url)
    api.artifact("proj/data:v2").link("registry/data-sets")
    set_policy(api.store, "proj", "data", keep_last=2)
    set_policy(api.store, "proj", None, keep_last=5)  # the artifact's own policy wins for data
    dry = apply(api.store, dry_run=True)
    assert api.version_numbers("proj/data") == [0, 1, 2, 3, 4, 5]  # the dry run deleted nothing
    assert sorted(dry.kept) == [("proj/data:v1", "aliased (pinned)"), ("proj/data:v2", "linked into the registry")]
    real = apply(api.store)
    assert [r.address for r in real.retired] == [r.address for r in dry.retired] == ["proj/data:v0", "proj/data:v3"]
    assert api.version_numbers("proj/data") == [1, 2, 4, 5]
    assert api.version_numbers("proj/other") == [0]


def test_an_older_than_policy_keeps_recent_versions(store_url: str) -> None:
    for n in range(3):
        log_files("data", {"a": str(n).encode()})
    api = registry.Api(store_url)
    set_policy(api.store, "proj", None, older_than=timedelta(days=7), keep_last=1)
    assert plan(api.store).retired == []
    in_ten_days = datetime.now(timezone.utc) + timedelta(days=10)
    assert [r.address for r in plan(api.store, at=in_ten_days).retired] == ["proj/data:v0", "proj/data:v1"]


def test_gc_applies_retention_and_its_dry_run_lists_what_the_real_run_deletes(store_url: str) -> None:
    for n in range(3):
        log_files("data", {"a": f"contents {n}".encode()})
    _cli(store_url, "retention", "set", "proj/data", "--keep-last", "1")
    assert "keep last 1" in _cli(store_url, "retention", "show", "proj/data")
    dry = json.loads(_cli(store_url, "gc", "--grace", "0", "--dry-run", "--json"))
    assert [d["address"] for d in dry["retention"]["deleted"]] == ["proj/data:v0", "proj/data:v1"]
    api = registry.Api(store_url)
    retired = set().union(*(objects_of(api.store, api.artifact(f"proj/data:v{n}").record) for n in (0, 1)))
    assert not retired & objects_of(api.store, api.artifact("proj/data:v2").record)  # nothing shared
    assert set(dry["deleted"]) == retired  # two files (loose, or a pack each) and two file lists
    assert registry.Api(store_url).version_numbers("proj/data") == [0, 1, 2]
    assert content_keys(store_url) >= retired
    real = json.loads(_cli(store_url, "gc", "--grace", "0", "--json"))
    assert real["retention"]["deleted"] == dry["retention"]["deleted"]
    assert sorted(real["deleted"]) == sorted(dry["deleted"]) and real["deleted_count"] == len(retired)
    assert registry.Api(store_url).version_numbers("proj/data") == [2]
    assert not content_keys(store_url) & retired


def test_aliases_changed_on_the_artifact_are_saved_as_a_difference(store_url: str) -> None:
    log_files("data", {"a": b"0"}, aliases=["best"])
    log_files("data", {"a": b"1"})
    api = registry.Api(store_url)
    v0 = api.artifact("proj/data:v0")
    v0.aliases.append("golden")  # W&B's way: change the list, then save
    v0.save()
    assert registry.Api(store_url).artifact("proj/data:v0").aliases == ["best", "golden"]
    stale = api.artifact("proj/data:v0")
    stale.aliases  # noqa: B018 - read: [best, golden]
    api.set_alias("proj/data:v1", "best")  # someone moves best meanwhile
    stale.aliases = ["golden"]  # this handle drops best, which is no longer here
    stale.tags = ["t"]
    stale.save()
    assert registry.Api(store_url).artifact("proj/data:best").version == "v1"  # the other move stands
    untouched = api.artifact("proj/data:v1")
    untouched.description = "x"
    untouched.save()  # aliases read by nobody: none moved
    assert registry.Api(store_url).aliases("proj/data") == {0: ["golden"], 1: ["latest", "best"]}


def test_log_artifact_takes_wandb_arguments_path_name_type_and_tags(store_url: str, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.csv").write_text("1,2")
    with registry.init(project="proj", job_type="build") as run:
        logged = run.log_artifact(tmp_path / "d", name="table", type="dataset", tags=["raw data"])
        default = run.log_artifact(tmp_path / "d" / "x.csv")
        assert default.name == f"run-{run.id}-x.csv" and default.type == "unspecified"
    again = registry.Api(store_url).artifact("proj/table:v0")
    assert (again.tags, again.state, logged.state) == (["raw data"], "COMMITTED", "COMMITTED")
    assert registry.Artifact("draft", type="dataset").state == "PENDING"
    again.delete()
    assert again.state == "DELETED"


def test_two_handles_editing_different_fields_keep_both_edits(store_url: str) -> None:
    log_files("data", {"a": b"0"}, metadata={"rows": 1})
    api = registry.Api(store_url)
    first, second = api.artifact("proj/data:v0"), api.artifact("proj/data:v0")
    first.description, second.tags = "cleaned", ["checked"]
    first.metadata  # noqa: B018 - both read before either saves
    second.description  # noqa: B018
    first.save()
    second.save()  # compare-and-swap on the annotations: its stale description is not written back
    final = registry.Api(store_url).artifact("proj/data:v0")
    assert (final.description, final.tags, final.metadata) == ("cleaned", ["checked"], {"rows": 1})


def test_a_policy_on_a_registry_collection_unlinks_old_links_and_never_touches_sources(store_url: str) -> None:
    sources = [log_files("convnet", {"w": str(n).encode()}, project="team-a", type="model") for n in range(3)]
    for n, source in enumerate(sources):
        source.link("registry/mnist", aliases=["production"] if n == 0 else None)
    api = registry.Api(store_url)
    set_policy(api.store, "registry", "mnist", keep_last=1)
    report = apply(api.store, ["registry"])
    assert [r.address for r in report.retired] == ["registry/mnist:v1"]
    assert report.kept == [("registry/mnist:v0", "aliased (production)")]
    assert api.version_numbers("registry/mnist") == [0, 2]
    assert api.version_numbers("team-a/convnet") == [0, 1, 2]  # sources stay
    assert ("retention.delete", "registry/mnist:v1") in {(e.action, e.subject) for e in api.audit_trail("team-a/convnet")}


def test_deleting_with_aliases_never_removes_an_alias_moved_elsewhere(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("data", {"a": b"0"}, aliases=["best"])
    log_files("data", {"a": b"1"})
    api = registry.Api(store_url)
    from registry import lifecycle

    original_remove = lifecycle.remove_alias

    def moved_meanwhile(backend, project, name, alias, expected_version=None):
        registry.Api(store_url).set_alias("proj/data:v1", alias)  # another writer, between our read and removal
        return original_remove(backend, project, name, alias, expected_version)

    monkeypatch.setattr(lifecycle, "remove_alias", moved_meanwhile)
    api.artifact("proj/data:v0").delete(delete_aliases=True)
    assert api.artifact("proj/data:best").version == "v1"  # the other writer's move stands
