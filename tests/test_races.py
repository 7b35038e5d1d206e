"""Many writers at once, on the real S3 server and the local directory (moto's checks are not atomic)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_dense_race
from store_fixtures import subprocess_env

import registry

WORKER = str(Path(__file__).with_name("race_worker.py"))
REAL_BACKENDS = ["local", "seaweed"]


def run_writers(store_url: str, tmp_path: Path, n: int, count: int, *extra: str) -> list[list[dict]]:
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "data", str(i), str(count), *extra],
            env=subprocess_env(store_url, tmp_path / f"cache-{i}"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(n)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append([json.loads(line) for line in out.splitlines()])
    return results


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_racing_writers_with_different_contents_get_dense_distinct_versions(store_url: str, tmp_path: Path) -> None:
    writers, calls = 8, 25
    results = run_writers(store_url, tmp_path, writers, calls)
    assert_dense_race(store_url, results, writers, calls, tmp_path / "dl")


@pytest.mark.parametrize("store_url", REAL_BACKENDS, indirect=True)
def test_racing_writers_with_identical_contents_end_on_one_version(store_url: str, tmp_path: Path) -> None:
    results = run_writers(store_url, tmp_path, 6, 1, "same")
    versions = registry.Api(store_url).artifact_versions("race/data")
    assert [a.version for a in versions] == ["v0"]
    assert {r[0]["version"] for r in results} == {"v0"}
    assert sum(r[0]["created"] for r in results) == 1  # exactly one writer created it
