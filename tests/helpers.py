"""Small builders shared by the tests."""
from __future__ import annotations

import subprocess

import pytest

import registry


def print_past_capture(request: pytest.FixtureRequest, line: str) -> None:
    """Print a module's totals even under pytest's output capture (they show what a test tried)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{line}")


def log_files(name: str, files: dict[str, bytes], *, project: str = "proj", type: str = "dataset",
              aliases: list[str] | None = None, metadata: dict | None = None, job_type: str = "build") -> registry.Artifact:
    """Log an artifact holding ``files`` from a fresh run; returns the logged artifact."""
    with registry.init(project=project, job_type=job_type) as run:
        artifact = registry.Artifact(name, type=type, metadata=metadata)
        for path, data in files.items():
            with artifact.new_file(path, mode="wb") as f:
                f.write(data)
        return run.log_artifact(artifact, aliases=aliases)


def assert_dense_race(store_url: str, results: list[list[dict]], writers: int, calls: int, downloads) -> None:
    """What racing writers must end with: versions v0..v(n-1), each number told to exactly one
    writer whose commit id it holds, ``latest`` on the last, and spot checks downloading whole."""
    api = registry.Api(store_url)
    versions = api.artifact_versions("race/data")
    total = writers * calls
    assert [int(a.version[1:]) for a in versions] == list(range(total))
    by_number = {a.version: a for a in versions}
    reported = [r for writer in results for r in writer]
    assert len({r["version"] for r in reported}) == total  # nobody was told a number twice
    for r in reported:
        assert r["created"] and by_number[r["version"]].commit_id == r["commit_id"]
    assert api.artifact("race/data:latest").version == f"v{total - 1}"
    for art in (versions[0], versions[total // 2], versions[-1]):  # spot-check: complete and downloadable
        art.verify(art.download(downloads / art.version))


def log_versions_for_alias_movers(count: int) -> None:
    """``proj/model`` v0..v(count-1), ``best`` on v0: what the alias movers race over."""
    with registry.init(project="proj", job_type="train") as run:
        for n in range(count):
            art = registry.Artifact("model", type="model")
            with art.new_file("weights.bin", mode="wb") as f:
                f.write(f"weights {n}".encode())
            run.log_artifact(art, aliases=["best"] if n == 0 else None)


def close_and_reap(procs) -> None:
    """Close each worker's stdin (its signal to stop), wait for it, and require a clean exit."""
    for p in procs:
        try:
            p.stdin.close()
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    for p in procs:
        assert p.returncode == 0, p.stderr.read()[-3000:]


def kill_when_paused(proc: subprocess.Popen, point: str) -> None:
    """Wait for a worker to print ``PAUSED <point>``, then SIGKILL it there (as a crash would)."""
    import os
    import signal

    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"PAUSED {point}"), proc.stderr.read()[-2000:]  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
