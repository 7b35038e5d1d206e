"""Listing cost as a store grows (issue 19): an artifact with 10,000 versions, a project with
100,000 runs, on SeaweedFS started by this script. A benchmark, not a test.

The records are written straight to the bucket (as the registry would write them, in parallel),
then each listing runs as a fresh CLI process (start-up included), side by side with a plain
boto3 listing of the same keys:

    registry ls P/NAME        (the 50 newest versions)   vs  list_objects_v2 of versions/
    registry runs P           (the 50 newest runs)       vs  list_objects_v2 of runs/ (delimiter)
    registry ls P             (artifacts, latest each)

    python benchmarks/listing.py                          # 10,000 versions, 100,000 runs
    python benchmarks/listing.py --versions 2000 --runs 10000
    python benchmarks/listing.py --cluster                # on tests/cluster.py's cluster (gateway 0)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from cluster import SeaweedCluster  # noqa: E402
from servers import SeaweedServer  # noqa: E402

from registry import keys  # noqa: E402
from registry.records import AliasRecord, RunRecord, VersionRecord  # noqa: E402

BUCKET, PREFIX, PROJECT = "listing", "bench", "big"


def fill(client, versions: int, runs: int) -> None:
    """``versions`` versions of big/model (latest -> the last) and ``runs`` runs of big."""
    start = datetime.now(timezone.utc) - timedelta(seconds=runs)
    digest = "ab" * 32

    def put(key: str, body: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=body)

    def version(n: int) -> None:
        record = VersionRecord(project=PROJECT, name="model", version=n, type="model", digest=digest, size=1,
                               file_count=1, created_at=start, commit_id=f"{n:032x}")
        put(keys.version(PROJECT, "model", n), record.to_bytes())

    def run(n: int) -> None:
        moment = start.timestamp() + n
        run_id = keys.new_run_id(moment)
        record = RunRecord(project=PROJECT, id=run_id, name=f"run-{n}", job_type="train",
                           started_at=datetime.fromtimestamp(moment, timezone.utc))
        put(keys.run(PROJECT, run_id), record.to_bytes())

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(version, range(versions)))
        list(pool.map(run, range(runs)))
    latest = AliasRecord(alias="latest", version=versions - 1, digest=digest, updated_at=start)
    put(keys.alias(PROJECT, "model", "latest"), latest.to_bytes())


def timed(command: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr[-2000:]
    return statistics.median(times)


def plain_listing(env: dict[str, str], prefix: str, delimiter: bool, repeats: int) -> float:
    script = (
        "import boto3, sys\n"
        "pages = boto3.client('s3').get_paginator('list_objects_v2')\n"
        f"extra = {{'Delimiter': '/'}} if {delimiter} else {{}}\n"
        f"n = sum(len(p.get('Contents', [])) + len(p.get('CommonPrefixes', [])) "
        f"for p in pages.paginate(Bucket='{BUCKET}', Prefix='{PREFIX}/{prefix}', **extra))\n"
        "print(n)\n"
    )
    return timed([sys.executable, "-c", script], env, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cluster", action="store_true", help="a cluster (1 master, 3 volume servers, 2 gateways)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.cluster:
            cluster = SeaweedCluster(Path(tmp) / "cluster", BUCKET)
            cluster.start()
            try:
                measure(args, tmp, cluster.client(0), cluster.env(0))
            finally:
                cluster.stop()
        else:
            with SeaweedServer(Path(tmp) / "weed") as server:
                server.make_bucket(BUCKET)
                measure(args, tmp, server.client(), server.env())


def measure(args: argparse.Namespace, tmp: str, client, server_env: dict[str, str]) -> None:
    """Fill the bucket through ``client``, then time each listing against ``server_env``'s endpoint."""
    began = time.perf_counter()
    fill(client, args.versions, args.runs)
    print(f"wrote {args.versions} version records and {args.runs} run records in {time.perf_counter() - began:.0f} s")
    env = {**os.environ, **server_env, "REGISTRY_URL": f"s3://{BUCKET}/{PREFIX}",
           "REGISTRY_CACHE_DIR": str(Path(tmp) / "cache")}
    cli = [sys.executable, "-m", "registry.cli"]
    rows = [
        (f"ls {PROJECT}/model ({args.versions} versions)", timed([*cli, "ls", f"{PROJECT}/model"], env, args.repeats),
         plain_listing(env, keys.versions_prefix(PROJECT, "model"), False, args.repeats)),
        (f"runs {PROJECT} ({args.runs} runs)", timed([*cli, "runs", PROJECT], env, args.repeats),
         plain_listing(env, keys.runs_prefix(PROJECT), True, args.repeats)),
        (f"ls {PROJECT} (artifacts)", timed([*cli, "ls", PROJECT], env, args.repeats),
         plain_listing(env, keys.artifacts_prefix(PROJECT), True, args.repeats)),
    ]
    print(f"\n{'command':45} {'registry s':>10} {'plain list s':>12} {'ratio':>6}")
    for label, ours, plain in rows:
        print(f"{label:45} {ours:10.2f} {plain:12.2f} {ours / plain:6.2f}")
    print("\nregistry = a fresh `registry` process (start-up included), median of "
          f"{args.repeats}; plain list = a fresh python process paginating list_objects_v2 over the same keys")


if __name__ == "__main__":
    main()
