"""The registry on a SeaweedFS cluster: two S3 gateways over one filer, volumes kept on two servers.

Writers on different gateways still get one winner per conditional write, dense versions and
honest answers; a volume server or a gateway lost mid-transfer never leaves a wrong byte or a
partial version. The cluster (``cluster.SeaweedCluster``) is shared by the module; a test
that kills a process restarts it before it ends (and ``healthy`` before the next one).

Run as ``python test_cluster.py push|write ...`` this file is one registry process of a test
(see ``worker``); its gateway comes from ``AWS_ENDPOINT_URL``.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cluster import SeaweedCluster
from helpers import assert_dense_race, close_and_reap, log_versions_for_alias_movers, print_past_capture
from store_fixtures import subprocess_env
from test_races import WORKER as RACE_WORKER

import registry
from registry.hashing import sha256_file

pytestmark = pytest.mark.cluster

BUCKET = "registry-cluster"
PROJECT = "cluster"
RACERS_PER_GATEWAY = 4
TRIALS = 30
TRIALS_AT_ONCE = 10
"""Trials race on different keys at once: SeaweedFS makes a gateway's contended conditional
write wait for the key's lock in whole seconds, so 30 trials one after another take minutes."""
LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict"}
ALIAS_MOVER = str(Path(__file__).with_name("test_alias_race.py"))
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedCluster]:
    """Master, three volume servers, a filer and two gateways, for the whole module."""
    with SeaweedCluster(tmp_path_factory.mktemp("cluster"), bucket=BUCKET) as running:
        yield running


@pytest.fixture
def healthy(cluster: SeaweedCluster) -> SeaweedCluster:
    """The cluster with every process running (a test before may have killed one and failed)."""
    for i, volume in enumerate(cluster.volumes):
        if not volume.running:
            cluster.restart_volume(i)
    for i, gateway in enumerate(cluster.gateways):
        if not gateway.running:
            cluster.restart_gateway(i)
    return cluster


@pytest.fixture
def store_url(healthy: SeaweedCluster, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty store on the cluster; ``REGISTRY_URL`` and boto3's environment point at it
    through gateway 0."""
    url = f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("REGISTRY_URL", url)
    for key, value in healthy.env(0).items():
        monkeypatch.setenv(key, value)
    return url


def api_via(cluster: SeaweedCluster, gateway: int, url: str, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> registry.Api:
    """An ``Api`` reading through one gateway with its own cache (a new cache dir is a new store
    object, whose client reads the endpoint now: the store objects are reused per settings)."""
    for key, value in cluster.env(gateway).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(cache_dir))
    return registry.Api(url)


def worker_env(cluster: SeaweedCluster, gateway: int, url: str, cache_dir: Path) -> dict[str, str]:
    """The environment of a registry process using ``url`` through one gateway, with its own cache."""
    env = subprocess_env(url, cache_dir)
    env.update(cluster.env(gateway))
    return env


def spawn(argv: list[str], env: dict[str, str], stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *argv], env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def results_of(procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[list[dict]]:
    """Wait for every process; each must exit 0; returns each one's JSON lines."""
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        results.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    return results


def random_files(root: Path, count: int, size: int) -> dict[str, str]:
    """``count`` files of random bytes under ``root``; returns path -> sha256."""
    root.mkdir(parents=True)
    hashes = {}
    for i in range(count):
        data = os.urandom(size)
        (root / f"part-{i:02d}.bin").write_bytes(data)
        hashes[f"part-{i:02d}.bin"] = hashlib.sha256(data).hexdigest()
    return hashes


def placed_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file a download placed (temp files excluded)."""
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".part")}


# -- 1. the store's own promise: one winner per conditional write, whichever gateway ----------
def _race(clients: list, keys: list[str], put) -> dict[str, list[tuple[int, str, str]]]:
    """Every client calls ``put(client, i, key)`` on every key, all at once (one thread each).

    Returns, per key, each client's (i, "won" | "lost" | "error", ETag or error code)."""
    barrier = threading.Barrier(len(clients) * len(keys))

    def one(job: tuple[int, str]) -> tuple[str, tuple[int, str, str]]:
        i, key = job
        barrier.wait(timeout=60)
        try:
            return key, (i, "won", put(clients[i], i, key)["ETag"])
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            return key, (i, "lost" if code in LOST_RACE else "error", code)

    jobs = [(i, key) for key in keys for i in range(len(clients))]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = list(pool.map(one, jobs))
    return {key: [r for k, r in outcomes if k == key] for key in keys}


def _one_winner(results: list[tuple[int, str, str]], what: str) -> tuple[int, str, str]:
    winners = [r for r in results if r[1] == "won"]
    assert len(winners) == 1 and all(r[1] == "lost" for r in results if r not in winners), f"{what}: {results}"
    return winners[0]


def test_conditional_writes_through_two_gateways_have_one_winner(healthy: SeaweedCluster, request: pytest.FixtureRequest) -> None:
    """Eight clients, four per gateway, race ``If-None-Match: *`` on a new key, then ``If-Match``
    on an existing key from the same ETag: exactly one wins each race (the others get 412), and
    what it wrote is what both gateways read. 30 trials of each, 10 keys racing at once."""
    gateways = len(healthy.gateways)
    racers = RACERS_PER_GATEWAY * gateways
    clients = [healthy.client(i % gateways, retries={"max_attempts": 1}, max_pool_connections=TRIALS_AT_ONCE)
               for i in range(racers)]  # no retry: a retried request could hide or fake a win
    readers = [healthy.client(g) for g in range(gateways)]
    prefix = uuid.uuid4().hex[:12]
    won = {"create": 0, "swap": 0}
    for wave in range(0, TRIALS, TRIALS_AT_ONCE):
        keys = [f"{prefix}/create-{t}" for t in range(wave, wave + TRIALS_AT_ONCE)]
        raced = _race(clients, keys, lambda c, i, key: c.put_object(Bucket=BUCKET, Key=key, Body=f"client {i}".encode(), IfNoneMatch="*"))
        for key, results in raced.items():
            winner = _one_winner(results, f"If-None-Match on {key}")
            for reader in readers:
                assert reader.get_object(Bucket=BUCKET, Key=key)["Body"].read() == f"client {winner[0]}".encode()
            won["create"] += 1

        keys = [f"{prefix}/swap-{t}" for t in range(wave, wave + TRIALS_AT_ONCE)]
        start = {key: readers[0].put_object(Bucket=BUCKET, Key=key, Body=b"start")["ETag"] for key in keys}
        raced = _race(clients, keys, lambda c, i, key, start=start: c.put_object(
            Bucket=BUCKET, Key=key, Body=f"swap by {i}".encode(), IfMatch=start[key]))
        for key, results in raced.items():
            winner = _one_winner(results, f"If-Match on {key}")
            for reader in readers:
                got = reader.get_object(Bucket=BUCKET, Key=key)
                assert got["Body"].read() == f"swap by {winner[0]}".encode() and got["ETag"] == winner[2]
            won["swap"] += 1
    print_past_capture(request, f"[test_cluster] {racers} clients on {gateways} gateways: one winner in {won['create']}/{TRIALS} "
                                f"If-None-Match races and {won['swap']}/{TRIALS} If-Match races")


# -- 2. writers and alias movers on different gateways ----------------------------------------
def test_racing_writers_on_two_gateways_get_dense_distinct_versions(healthy: SeaweedCluster, store_url: str, tmp_path: Path) -> None:
    """tests/test_races.py's racing writers (8 processes x 25 logs), four processes per gateway."""
    writers, calls = 8, 25
    procs = [spawn([RACE_WORKER, "data", str(i), str(calls)], worker_env(healthy, i % 2, store_url, tmp_path / f"cache-{i}"))
             for i in range(writers)]
    results = results_of(procs, timeout=240)
    assert_dense_race(store_url, results, writers, calls, tmp_path / "dl")


def test_alias_movers_on_two_gateways_have_one_winner_per_round(healthy: SeaweedCluster, store_url: str, tmp_path: Path) -> None:
    """tests/test_alias_race.py's eight movers (2 rounds, then a stale round), four per gateway."""
    movers, rounds = 8, 2
    log_versions_for_alias_movers(1 + rounds * movers)
    api = registry.Api(store_url)
    procs = [spawn([ALIAS_MOVER, "mover", str(i), str(rounds)], worker_env(healthy, i % 2, store_url, tmp_path / f"cache-{i}"), stdin=True)
             for i in range(movers)]

    def tell(word: str) -> None:
        for p in procs:
            p.stdin.write(f"{word}\n")
            p.stdin.flush()

    try:
        for round_ in range(rounds):
            tell("READ")
            read = [p.stdout.readline().split() for p in procs]
            assert all(r[:1] == ["READY"] for r in read), [p.stderr.read()[-2000:] for p in procs if p.wait(timeout=10) is not None][:1]
            assert len({r[1] for r in read}) == 1, f"movers read different versions: {read}"
            tell("GO")  # the barrier: nobody writes before everybody has read
            results = [json.loads(p.stdout.readline()) for p in procs]
            winners = [r for r in results if r["won"]]
            assert len(winners) == 1, f"round {round_}: {results}"
            assert all(r["error"].startswith("ConflictError") for r in results if not r["won"]), results
            assert api.artifact("proj/model:best").version == f"v{winners[0]['target']}"
        tell("STALE")
        stale = [json.loads(p.stdout.readline()) for p in procs]
        assert not any(r["won"] for r in stale) and all(r["error"].startswith("ConflictError") for r in stale), stale
        assert api.artifact("proj/model:best").version == f"v{winners[0]['target']}"  # nobody moved it
    finally:
        close_and_reap(procs)


# -- 3. a node lost ----------------------------------------------------------------------------
def test_volume_server_killed_mid_pull_never_places_a_wrong_byte(
    healthy: SeaweedCluster, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    """96 MiB in 24 files, pushed through gateway 0; pulled through gateway 1 while the volume
    server holding a copy of the most chunks is SIGKILLed at a quarter of the bytes. The pull
    completes from the replicas, or fails with a RegistryError and completes when run again;
    every file placed, after either, has the version's sha256."""
    expected = random_files(tmp_path / "src", 24, 4 * MiB)  # one 4 MiB chunk each: 16 reads in flight at once
    api_via(healthy, 0, store_url, tmp_path / "push-cache", monkeypatch)
    with registry.init(project=PROJECT, job_type="push") as run:
        art = registry.Artifact("big", type="dataset")
        art.add_dir(tmp_path / "src")
        run.log_artifact(art)
    pulled = api_via(healthy, 1, store_url, tmp_path / "pull-cache", monkeypatch).artifact(f"{PROJECT}/big:v0")
    assert {f.path: f.digest for f in pulled.files()} == expected
    prefix = store_url.split("/", 3)[3]
    client = healthy.client(0)
    holding = [o["Key"] for kind in ("blobs/", "packs/")  # the objects holding the files' bytes (format 1 or 2)
               for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/{kind}")
               for o in page.get("Contents", [])]
    chunks = [vid for key in holding for vid in healthy.chunk_volumes(key)]
    held = healthy.volume_ids()
    victim = max(range(len(held)), key=lambda i: sum(vid in held[i] for vid in chunks))  # a copy of the most chunks
    on_victim = sum(vid in held[victim] for vid in chunks)
    total, seen, lock, quarter = sum(f.size for f in pulled.files()), [0], threading.Lock(), threading.Event()

    def progress(count: int, files: int) -> None:
        with lock:
            seen[0] += count
            if seen[0] >= total // 4:
                quarter.set()

    at_kill: list[int] = []

    def kill() -> None:
        quarter.wait(60)
        with lock:
            at_kill.append(seen[0])
        healthy.kill_volume(victim)

    failed_before = healthy.failed_reads(1, victim)
    killer = threading.Thread(target=kill)
    killer.start()
    root, outcome = tmp_path / "pulled", "completed"
    try:
        try:
            assert pulled.pull(root, progress=progress).fetched_bytes == total
        except registry.RegistryError as e:
            outcome = f"failed, then completed when run again ({type(e).__name__}: {e})"
            assert all(expected[p] == h for p, h in placed_hashes(root).items())  # nothing wrong was placed
            pulled.pull(root)  # again, with the volume server still down
        killer.join()
        assert at_kill and at_kill[0] < total, f"the pull ended before the kill ({at_kill}): make it bigger"
        assert placed_hashes(root) == expected
        pulled.verify(root)
        failovers = healthy.failed_reads(1, victim) - failed_before
    finally:
        quarter.set()
        killer.join()
        healthy.restart_volume(victim)
    print_past_capture(request, f"[test_cluster] volume server {victim} SIGKILLed at {at_kill[0] // MiB}/{total // MiB} MiB of a pull; it held a copy "
                                f"of {on_victim} of the {len(chunks)} chunks: {outcome}; gateway 1 logged {failovers} of its reads from it failed")


def test_gateway_killed_mid_push_leaves_no_partial_version(
    healthy: SeaweedCluster, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    """A push of 48 MiB in 24 files through gateway 0, whose gateway is SIGKILLed once a quarter
    of the bytes are packed: the push fails with a StorageError naming the gateway (retries give
    up), no version record appears, every blob and pack that reached the store (format 2 sends
    16 MiB packs, so there may be none yet) hashes to its name,
    and the same push through gateway 1 then logs v0, complete, readable through both."""
    expected = random_files(tmp_path / "src", 24, 2 * MiB)
    pusher = spawn([__file__, "push", "big", str(tmp_path / "src")], worker_env(healthy, 0, store_url, tmp_path / "cache-0"))
    try:
        while True:
            line = pusher.stdout.readline()
            assert line.startswith("SENT"), pusher.stderr.read()[-3000:]
            if int(line.split()[1]) >= 12 * MiB:
                break
        healthy.kill_gateway(0)
        killed_at = time.monotonic()
        _, err = pusher.communicate(timeout=60)
        gave_up_after = time.monotonic() - killed_at
    finally:
        pusher.kill()
        pusher.wait()
    assert pusher.returncode == 1 and err.strip().splitlines()[-1].startswith("registry.errors.StorageError: "), err[-3000:]
    assert healthy.endpoint_url(0) in err.strip().splitlines()[-1]
    store = healthy.client(1)
    prefix = store_url.split("/", 3)[3] + "/"
    listed = [o["Key"][len(prefix):] for page in store.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
              for o in page.get("Contents", [])]
    assert not [k for k in listed if "/versions/" in k], listed
    stored = [k for k in listed if k.startswith(("blobs/", "packs/"))]
    for key in stored:  # a blob or a pack is whole or absent: its bytes hash to its name
        body = store.get_object(Bucket=BUCKET, Key=prefix + key)["Body"].read()
        name = key.rsplit("/", 1)[-1].removesuffix(".pack") if key.startswith("packs/") \
            else key.replace("blobs/sha256/", "").replace("/", "")
        assert hashlib.sha256(body).hexdigest() == name, key

    again = spawn([__file__, "push", "big", str(tmp_path / "src")], worker_env(healthy, 1, store_url, tmp_path / "cache-1"))
    [[logged]] = results_of([again])
    assert logged["version"] == "v0" and logged["created"]
    healthy.restart_gateway(0)
    for gateway in (0, 1):
        art = api_via(healthy, gateway, store_url, tmp_path / f"read-cache-{gateway}", monkeypatch).artifact(f"{PROJECT}/big:latest")
        assert art.version == "v0" and art.commit_id == logged["commit_id"]
        root = Path(art.download(tmp_path / f"dl-{gateway}"))
        assert placed_hashes(root) == expected
        art.verify(root)
    print_past_capture(request, f"[test_cluster] gateway 0 SIGKILLed mid-push ({len(stored)} blob(s) or pack(s) stored, all whole): "
                                f"the pusher gave up {gave_up_after:.2f} s later with a StorageError; the push through gateway 1 logged v0")


def test_volume_server_killed_and_restarted_under_writers(
    healthy: SeaweedCluster, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    """Four writers (two per gateway) log versions of 256 KiB of fresh bytes until told to stop;
    a volume server is SIGKILLed once 4 versions exist, restarted 2 s later, and the writers
    stop once 8 more versions exist. Every writer ends cleanly, numbers are dense and honest,
    and every version downloads and verifies."""
    writers = 4
    procs = [spawn([__file__, "write", "stream", str(i), str(256 * 1024)], worker_env(healthy, i % 2, store_url, tmp_path / f"cache-{i}"),
                   stdin=True) for i in range(writers)]
    api = api_via(healthy, 1, store_url, tmp_path / "read-cache", monkeypatch)

    def count() -> int:
        return len(api.version_numbers(f"{PROJECT}/stream"))

    def wait_for(versions: int) -> None:
        deadline = time.monotonic() + 60
        while count() < versions:
            assert all(p.poll() is None for p in procs), f"a writer ended before {versions} versions: {[p.poll() for p in procs]}"
            assert time.monotonic() < deadline, f"writers stalled below {versions} versions"
            time.sleep(0.1)

    try:
        wait_for(4)
        at_kill = count()
        healthy.kill_volume(1)
        time.sleep(2)
        at_restart = count()
        healthy.restart_volume(1)
        up = count()
        wait_for(up + 8)  # writes after the restart too
        for p in procs:
            p.stdin.write("STOP\n")
            p.stdin.flush()
        results = results_of(procs)
    finally:
        for p in procs:
            p.kill()
    versions = api.artifact_versions(f"{PROJECT}/stream")
    assert [a.version for a in versions] == [f"v{n}" for n in range(len(versions))]
    reported = [r for writer in results for r in writer]
    assert sorted(r["version"] for r in reported) == sorted(a.version for a in versions)  # each told its own
    by_number = {a.version: a for a in versions}
    for r in reported:
        assert by_number[r["version"]].commit_id == r["commit_id"]
    for art in versions:
        root = Path(art.download(tmp_path / "dl" / art.version))
        art.verify(root)
        assert sha256_file(root / "payload.bin") == art.get_entry("payload.bin").digest
    print_past_capture(request, f"[test_cluster] volume server 1 SIGKILLed at {at_kill} versions, restarted 2 s later at {at_restart} "
                                f"(up at {up}): {len(versions)} versions by {writers} writers on 2 gateways, all verified")


# -- the registry processes the tests start ----------------------------------------------------
def worker(argv: list[str]) -> None:
    """``push NAME DIR``: log DIR as artifact NAME, printing ``SENT <bytes>`` as blobs go out.
    ``write NAME WRITER SIZE``: log versions of SIZE fresh random bytes until stdin says STOP
    (or closes), at most 200. Each log prints {"version", "commit_id", "created"} as a JSON line."""
    def report(art: registry.Artifact) -> None:
        print(json.dumps({"version": art.version, "commit_id": art.commit_id, "created": art.created}), flush=True)

    with registry.init(project=PROJECT, job_type=argv[0]) as run:
        if argv[0] == "push":
            sent, lock = [0], threading.Lock()

            def progress(count: int) -> None:
                with lock:
                    sent[0] += count
                    print(f"SENT {sent[0]}", flush=True)

            art = registry.Artifact(argv[1], type="dataset")
            art.add_dir(argv[2])
            report(run.log_artifact(art, progress=progress))
            return
        name, writer, size = argv[1], argv[2], int(argv[3])
        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
        for i in range(200):
            if stop.is_set():
                break
            art = registry.Artifact(name, type="dataset")
            with art.new_file("shared.txt") as f:
                f.write("the same in every version\n")
            with art.new_file("payload.bin", mode="wb") as f:
                f.write(f"writer {writer} call {i}\n".encode() + os.urandom(size))
            report(run.log_artifact(art))


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] in ("push", "write"):
    worker(sys.argv[1:])
