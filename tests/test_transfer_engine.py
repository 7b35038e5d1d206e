"""The obstore engine's pipeline on a real SeaweedFS: large blobs move as ranged parts within a
memory budget shared by every transfer of a store, and land whole and verified."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import backends.s3_obstore as s3_obstore
import registry
from backends.s3_streams import ByteBudget
from helpers import log_files
from store_fixtures import small_parts

PART = 5 * 1024 * 1024


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_many_large_blobs_within_a_tight_budget_neither_deadlock_nor_mix_up(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight 3-part blobs at once with room for only three parts in memory: every reader
    either holds parts it will consume or waits holding nothing, so all of them finish."""
    small_parts(monkeypatch, PART)
    monkeypatch.setattr(s3_obstore, "MEMORY_BUDGET", 3 * PART)
    files = {f"shard{i}.bin": os.urandom(2 * PART + 1000 * i + 1) for i in range(8)}
    log_files("big", files)
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "other-cache"))  # fetched, not found locally
    done: list[Path] = []
    thread = threading.Thread(target=lambda: done.append(
        Path(registry.Api(store_url).artifact("proj/big:latest").download(tmp_path / "out"))))
    thread.start()
    thread.join(timeout=120)
    assert done, "the download did not finish: readers waited on each other"
    assert {p.name: p.read_bytes() for p in done[0].iterdir()} == files


def test_a_share_larger_than_the_budget_runs_alone() -> None:
    budget = ByteBudget(100)
    assert budget.try_acquire(60) and not budget.try_acquire(60)
    budget.release(60)
    with budget.holding(10_000):  # cut to the whole budget
        assert budget.used == 100 and not budget.try_acquire(1)
    assert budget.used == 0


def test_retries_spend_a_quota_that_successes_refill() -> None:
    """When a server is gone for good, many transfers give up together (test_cluster kills a
    gateway mid-push and sees the pusher stop within seconds)."""
    quota = s3_obstore.RetryQuota(12)
    assert quota.spend(10) and not quota.spend(5)
    quota.refund(100)
    assert quota.left == 12
