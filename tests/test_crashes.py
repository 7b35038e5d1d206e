"""A writer killed at any point of logging leaves no version or a complete one; the next succeeds."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from helpers import kill_when_paused
from registry import keys
from registry.gc import collect_garbage
from registry.store import open_store
from store_fixtures import subprocess_env
from test_races import WORKER

REAL_BACKENDS = ["local", "seaweed"]
# point -> (a version exists afterwards, the custom alias exists afterwards)
CRASH_POINTS = {
    "after-blobs": False,
    "after-file-list": False,
    "after-version": True,
    "before-alias": True,
}


def writer_env(store_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = subprocess_env(store_url, tmp_path / "cache-writer")
    env["RACE_ALIAS"] = "1"
    env.update(extra)
    return env


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_writer_exiting_at_each_point_leaves_nothing_half_visible(store_url: str, tmp_path: Path, point: str) -> None:
    env = writer_env(store_url, tmp_path, REGISTRY_TEST_CRASH_AT=point)
    proc = subprocess.run([sys.executable, WORKER, "data", "0", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 77, proc.stderr[-2000:]
    api = registry.Api(store_url)
    if CRASH_POINTS[point]:
        art = api.artifact("race/data:latest")
        assert art.version == "v0"
        art.verify(art.download(tmp_path / "dl"))  # complete: every file is there
        assert "candidate" not in art.aliases  # died before its custom alias
    else:
        with pytest.raises(registry.NotFoundError):
            api.artifact("race/data:latest")
    # the next writer succeeds and numbers stay dense
    ok = subprocess.run([sys.executable, WORKER, "data", "1", "1"], env=writer_env(store_url, tmp_path), capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    expected = ["v0", "v1"] if CRASH_POINTS[point] else ["v0"]
    assert [a.version for a in api.artifact_versions("race/data")] == expected
    assert api.artifact("race/data:latest").version == expected[-1]


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_sigkill_mid_upload_leaves_no_version(store_url: str, tmp_path: Path) -> None:
    env = writer_env(store_url, tmp_path, REGISTRY_TEST_PAUSE_AT="after-blobs")
    proc = subprocess.Popen([sys.executable, WORKER, "data", "0", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kill_when_paused(proc, "after-blobs")
    assert proc.returncode == -signal.SIGKILL
    api = registry.Api(store_url)
    with pytest.raises(registry.NotFoundError):
        api.artifact("race/data:latest")
    ok = subprocess.run([sys.executable, WORKER, "data", "1", "1"], env=writer_env(store_url, tmp_path), capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert [a.version for a in api.artifact_versions("race/data")] == ["v0"]


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)  # a local store keeps small files whole
def test_a_writer_killed_between_a_pack_and_its_index_leaves_a_pack_that_gc_reclaims(store_url: str,
                                                                                     tmp_path: Path) -> None:
    """No reader can find chunks in a pack without an index, so the next writer sends them again;
    the pack stays while the dead writer's marker protects it and goes once that lease is over."""
    crashed = subprocess.run([sys.executable, WORKER, "data", "0", "1"], capture_output=True, text=True, timeout=120,
                             env=writer_env(store_url, tmp_path, REGISTRY_TEST_CRASH_AT="after-pack"))
    assert crashed.returncode == 77, crashed.stderr[-2000:]
    store = open_store(store_url)
    (orphan,) = [info.key for info in store.backend.list(keys.packs_prefix())]
    assert list(store.backend.list(keys.pack_index_prefix())) == []
    api = registry.Api(store_url)
    with pytest.raises(registry.NotFoundError):
        api.artifact("race/data:latest")
    ok = subprocess.run([sys.executable, WORKER, "data", "1", "1"], env=writer_env(store_url, tmp_path),
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    collect_garbage(store, grace_seconds=0)
    assert store.backend.exists(orphan)  # its writer's marker still names it
    for marker in store.backend.list(keys.inflight_prefix()):  # six hours on: that writer's lease is over
        store.backend.delete(marker.key)
    report = collect_garbage(store, grace_seconds=0)
    assert orphan in report.deleted and not store.backend.exists(orphan)
    art = api.artifact("race/data:latest")
    art.verify(art.download(tmp_path / "dl"))
