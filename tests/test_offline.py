"""Offline mode and ``registry sync``: log with no network, publish later, exactly once.

Each "machine" is a process (tests/offline_worker.py) with its own cache directory. Offline
processes refuse every network connection and point AWS_ENDPOINT_URL at a port where nothing
listens, so any attempt to reach the store fails the test.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import registry
from registry.cli import cli
from helpers import kill_when_paused, log_files
from servers import pick_ports
from store_fixtures import subprocess_env

WORKER = str(Path(__file__).parent / "offline_worker.py")
REAL_BACKENDS = ["local", "seaweed"]


def machine_env(store_url: str, machine: Path, *, offline: bool) -> dict[str, str]:
    env = subprocess_env(store_url, machine / "cache")
    if offline:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{pick_ports(1, grpc=False)[0]}"  # nothing listens
    return env


def run_machine(store_url: str, machine: Path, *args: str, offline: bool = True) -> dict:
    machine.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, WORKER, *args], env=machine_env(store_url, machine, offline=offline),
                          cwd=machine, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def seen_online(machine: Path, monkeypatch: pytest.MonkeyPatch, address: str) -> registry.Artifact:
    """``machine`` resolves and downloads ``address`` while online, as a training host would."""
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(machine / "cache"))
    art = registry.Api().artifact(address)
    art.download(machine / "online-download")
    return art


def sync_as(machine: Path, monkeypatch: pytest.MonkeyPatch, **kwargs) -> registry.outbox_sync.SyncReport:
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(machine / "cache"))
    return registry.sync(**kwargs)


def store_keys(api: registry.Api) -> dict[str, str]:
    return {info.key: info.token for info in api.store.backend.list("") if not info.key.startswith("inflight/")}


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_pipeline_logged_offline_is_published_by_sync(store_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("raw", {"data.txt": b"raw v0"}, aliases=["best"], job_type="load-data")
    machine = tmp_path / "laptop"
    seen_online(machine, monkeypatch, "proj/raw:best")

    offline = run_machine(store_url, machine, "pipeline")

    assert offline["raw_text"] == "raw v0"  # resolved and downloaded from what the laptop saw
    assert any("offline" in w and "proj/raw:best" in w for w in offline["warnings"])  # may be stale
    assert "offline" in offline["missing"] and "never-seen" in offline["missing"]
    api = registry.Api(store_url)
    with pytest.raises(registry.NotFoundError):
        api.artifact("proj/model:latest")  # nothing reached the store
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "someone-else"))
    log_files("shared", {"same.txt": b"identical everywhere"})  # meanwhile, the same contents online

    report = sync_as(machine, monkeypatch)

    assert not report.conflicts
    by_outbox = {v["outbox"].split(":")[0]: v for v in report.versions}
    assert by_outbox["proj/model"]["created"] and by_outbox["proj/report"]["created"]
    assert by_outbox["proj/shared"] == {"outbox": "proj/shared:v0", "published": "proj/shared:v0", "created": False}
    model = api.artifact("proj/model:best")
    assert (model.version, model.digest) == ("v0", offline["model_digest"])
    model.verify(model.download(tmp_path / "model"))
    train = model.logged_by()
    assert train is not None and train.record.job_type == "train"
    assert [a.qualified_name for a in train.used_artifacts()] == ["proj/raw:v0"]
    assert sorted(a.qualified_name for a in train.logged_artifacts()) == ["proj/model:v0", "proj/shared:v0"]
    assert [r.record.job_type for r in model.used_by()] == ["eval"]
    assert train.history()[0]["loss"] == 0.5
    (image,) = train.image_shas
    assert train.image(image).startswith(b"\x89PNG")
    assert api.cached_file(train.files()[0]).read_bytes() == b"trained offline"
    labels = {n.label for n in api.lineage("proj/report:latest").nodes.values()}
    assert any("train" in label for label in labels) and any("raw" in label for label in labels)

    before = store_keys(api)
    again = sync_as(machine, monkeypatch)
    assert (again.versions, again.runs, again.aliases) == ([], [], [])
    assert store_keys(api) == before  # a second sync changes nothing


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_dry_run_lists_and_changes_nothing(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = tmp_path / "laptop"
    run_machine(store_url, machine, "log", "data", "2", "a")
    api = registry.Api(store_url)

    report = sync_as(machine, monkeypatch, dry_run=True)

    assert [v["outbox"] for v in report.versions] == ["proj/data:v0", "proj/data:v1"]
    assert report.aliases == ["proj/data:best -> outbox v1"] and len(report.runs) == 2
    assert not Path(store_url).exists() or not api.projects()
    assert len(sync_as(machine, monkeypatch).versions) == 2


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_alias_moved_meanwhile_is_reported_not_forced(store_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    log_files("data", {"payload.txt": b"v0"}, aliases=["best"])
    machine = tmp_path / "laptop"
    seen_online(machine, monkeypatch, "proj/data:best")
    run_machine(store_url, machine, "log", "data", "1", "offline")  # moves best to its new version
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "colleague"))
    log_files("data", {"payload.txt": b"colleague"}, aliases=["best"])  # v1, best -> v1

    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(machine / "cache"))
    synced = CliRunner().invoke(cli, ["sync"])

    api = registry.Api(store_url)
    assert synced.exit_code == 3  # a conflict: reported, everything else published
    assert "published proj/data:v1 as proj/data:v2" in synced.output
    assert "1 conflict(s): alias proj/data:best points to v1 in the store" in synced.output
    assert api.artifact("proj/data:best").version == "v1"  # the colleague's move stands
    assert api.artifact("proj/data:latest").version == "v2"


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_two_outboxes_synced_at_once_stay_consistent(store_url: str, tmp_path: Path) -> None:
    machines = [tmp_path / "cluster-a", tmp_path / "cluster-b"]
    logged = {m.name: run_machine(store_url, m, "log", "data", "3", m.name)["logged"] for m in machines}

    procs = [subprocess.Popen([sys.executable, WORKER, "sync"], env=machine_env(store_url, m, offline=False),
                              cwd=m, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in machines]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]

    api = registry.Api(store_url)
    versions = api.artifact_versions("proj/data")
    assert [a.version for a in versions] == [f"v{n}" for n in range(6)]  # dense: each published once
    every = [entry for entries in logged.values() for entry in entries]
    assert sorted(a.commit_id for a in versions) == sorted(e["commit_id"] for e in every)
    for entry in every:  # each run's output names the version that holds its contents
        (output,) = api.run(f"proj/{entry['run']}", by_name=False).logged_artifacts()
        assert output.digest == entry["digest"] and output.commit_id == entry["commit_id"]
    assert api.artifact("proj/data:best").commit_id in {entries[-1]["commit_id"] for entries in logged.values()}


SYNC_POINTS = ["sync-after-blobs", "after-version", "after-version@2", "before-alias", "sync-after-version",
               "sync-before-runs", "sync-before-archive"]


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
@pytest.mark.parametrize("point", SYNC_POINTS)
def test_sync_killed_at_any_point_then_rerun_publishes_exactly_once(store_url: str, tmp_path: Path, point: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    machine = tmp_path / "laptop"
    logged = run_machine(store_url, machine, "log", "data", "2", "a")["logged"]
    proc = subprocess.Popen([sys.executable, WORKER, "sync", point], env=machine_env(store_url, machine, offline=False),
                            cwd=machine, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when_paused(proc, point)

    report = sync_as(machine, monkeypatch)

    assert not report.conflicts
    api = registry.Api(store_url)
    versions = api.artifact_versions("proj/data")
    assert [a.commit_id for a in versions] == [e["commit_id"] for e in logged]  # one copy each, in order
    assert api.artifact("proj/data:best").version == "v1"
    assert api.artifact("proj/data:latest").version == "v1"
    runs = api.runs("proj")
    assert sorted(r.record.id for r in runs) == sorted(e["run"] for e in logged)
    assert sorted(a.version for r in runs for a in r.logged_artifacts()) == ["v0", "v1"]
    assert sync_as(machine, monkeypatch).versions == []


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_the_command_line_logs_offline_and_syncs(store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("offline")
    pushed = CliRunner().invoke(cli, ["--offline", "push", str(folder), "proj/data", "--type", "dataset", "--alias", "best"])
    assert pushed.exit_code == 0, pushed.output
    assert not Path(store_url).exists()  # the store was not touched
    listed = CliRunner().invoke(cli, ["--offline", "--json", "ls", "proj/data"])
    assert json.loads(listed.output)[0]["aliases"] == ["latest", "best"]
    assert "would publish proj/data:v0" in CliRunner().invoke(cli, ["sync", "--dry-run"]).output
    synced = CliRunner().invoke(cli, ["sync"])
    assert synced.exit_code == 0 and "published proj/data:v0 as proj/data:v0" in synced.output
    assert registry.Api(store_url).artifact("proj/data:best").version == "v0"
    assert "nothing to sync" in CliRunner().invoke(cli, ["sync"]).output


@pytest.mark.parametrize("store_url", ["local"], indirect=True)
def test_gc_refuses_to_run_on_the_outbox(store_url: str) -> None:
    result = CliRunner().invoke(cli, ["--offline", "gc"])
    assert result.exit_code == 5 and "not offline" in result.output
