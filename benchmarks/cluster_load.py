"""Load on a SeaweedFS cluster (issue 19, point 4): many clients pulling one big artifact, and
pushers logging different ones, through two S3 gateways at once. A benchmark, not a test.

It starts its own cluster (``tests/cluster.py``: a master, three volume servers with
replication 001, a filer, two S3 gateways), logs one artifact (default 256 MiB: 8 files x 32 MiB
of random bytes) through gateway 0 with the public API, then runs every client as a FRESH
PROCESS of the CLI, its own cache and directory, gateways alternating 0, 1, 0, ...:

=====================  ============================================================================
pull 256 MiB           N processes at once (``--clients 1,4,16``): ``registry pull P/big:latest -d DIR``;
                       afterwards every download is re-hashed against the version (``Artifact.verify``)
push 32 MiB            M processes at once (``--pushers 1,8``), each ``registry push`` of a DIFFERENT
                       artifact (distinct random bytes)
pull back pushed       the M pushed versions pulled back at once, each through the OTHER gateway and
                       compared byte for byte (sha256) with what was pushed
=====================  ============================================================================

Latency = wall time of one process, start-up included (as a user running the CLI sees it).
Throughput = bytes moved by the successful clients of a batch / wall time of the whole batch (first start to last exit).
A failure is a non-zero exit, a timeout, a wrong digest, bytes that did not come from the store,
or a file that does not verify; the run exits 1 if there was any.

    python benchmarks/cluster_load.py                               # 256 MiB x (1, 4, 16); 8 pushers
    python benchmarks/cluster_load.py --size-mib 64 --clients 1,4 --pushers 2 --push-size-mib 8
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from cluster import SeaweedCluster  # noqa: E402

import registry  # noqa: E402

MiB = 1024 * 1024
BUCKET, PREFIX, PROJECT, BIG = "registry-load", "load", "load", "big"
CLI = [sys.executable, "-m", "registry.cli"]
CHILDREN: list[subprocess.Popen] = []
"""Every client process started, so that an error or Ctrl-C can stop the ones still running."""


@dataclass
class Outcome:
    """One client process: how long it took and what went wrong (``error`` is empty if nothing)."""

    index: int
    gateway: int
    seconds: float
    error: str = ""
    result: dict = field(default_factory=dict)


@dataclass
class Batch:
    operation: str
    clients: int
    per_client: int
    """bytes one client moves"""
    wall: float
    outcomes: list[Outcome]
    load: tuple[float, float]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]

    @property
    def mib_per_s(self) -> float:
        """Bytes the successful clients moved / the batch's wall time."""
        return (len(self.outcomes) - len(self.failed)) * self.per_client / MiB / self.wall


@dataclass
class Job:
    """One client process to run: its command line, gateway and environment additions."""

    argv: list[str]
    gateway: int
    env: dict[str, str]


# -- data ---------------------------------------------------------------------------------------
def generate(root: Path, total: int, files: int) -> dict[str, str]:
    """``files`` files of random bytes summing to ``total``; returns path -> sha256."""
    root.mkdir(parents=True)
    hashes = {}
    for i in range(files):
        size = total // files + (1 if i < total % files else 0)
        digest = hashlib.sha256()
        with open(root / f"part-{i:02d}.bin", "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 16 * MiB))
                digest.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        hashes[f"part-{i:02d}.bin"] = digest.hexdigest()
    return hashes


def sha256_tree(root: Path) -> dict[str, str]:
    hashes = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(MiB):
                digest.update(chunk)
        hashes[path.relative_to(root).as_posix()] = digest.hexdigest()
    return hashes


# -- running client processes -------------------------------------------------------------------
def run_batch(jobs: list[Job], base_env: dict[str, str], workdir: Path, timeout: float) -> tuple[float, list[Outcome]]:
    """Start every job at once; wall time of the batch and one outcome per job (exit code, JSON output)."""
    workdir.mkdir(parents=True, exist_ok=True)
    started, procs = [], []
    for i, job in enumerate(jobs):
        started.append(time.perf_counter())
        with open(workdir / f"{i}.out", "wb") as out, open(workdir / f"{i}.err", "wb") as err:
            proc = subprocess.Popen(job.argv, env={**base_env, **job.env}, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, cwd=workdir, start_new_session=True)  # Ctrl-C reaches only us
        CHILDREN.append(proc)
        procs.append(proc)
    ended: list[float | None] = [None] * len(jobs)
    deadline = started[0] + timeout
    while any(e is None for e in ended) and time.perf_counter() < deadline:
        for i, proc in enumerate(procs):
            if ended[i] is None and proc.poll() is not None:
                ended[i] = time.perf_counter()
        time.sleep(0.01)
    outcomes = []
    for i, (job, proc) in enumerate(zip(jobs, procs)):
        if ended[i] is None:
            stop(proc)
        seconds = (ended[i] or time.perf_counter()) - started[i]
        outcomes.append(outcome_of(i, job.gateway, seconds, proc.returncode if ended[i] else None,
                                   workdir / f"{i}"))
    return max(e or time.perf_counter() for e in ended) - started[0], outcomes


def outcome_of(index: int, gateway: int, seconds: float, code: int | None, logs: Path) -> Outcome:
    """``logs``.out and .err are the process's stdout and stderr."""
    stdout = logs.with_suffix(".out").read_text(errors="replace")
    stderr = logs.with_suffix(".err").read_text(errors="replace")
    if code is None:
        return Outcome(index, gateway, seconds, "timed out (killed)")
    if code != 0:
        return Outcome(index, gateway, seconds, f"exit {code}: {stderr.strip()[-800:]}")
    try:
        return Outcome(index, gateway, seconds, result=json.loads(stdout))
    except ValueError:
        return Outcome(index, gateway, seconds, f"no JSON on stdout: {stdout[-300:]!r}")


def stop(proc: subprocess.Popen) -> None:
    """SIGKILL one client's process group (its own session: only what this script started)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def client_env(cluster: SeaweedCluster, gateway: int, cache: Path) -> dict[str, str]:
    return {**cluster.env(gateway), "REGISTRY_CACHE_DIR": str(cache)}


# -- the operations -------------------------------------------------------------------------------
class Bench:
    def __init__(self, cluster: SeaweedCluster, base: Path, args: argparse.Namespace) -> None:
        self.cluster, self.base, self.args = cluster, base, args
        self.url = f"s3://{BUCKET}/{PREFIX}"
        self.env = {**os.environ, "REGISTRY_URL": self.url, "PYTHONPATH": os.pathsep.join(
            [str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.batches: list[Batch] = []
        self.problems: list[str] = []
        self.serial = 0

    def workdir(self, label: str) -> Path:
        self.serial += 1
        return self.base / f"{self.serial:02d}-{label}"

    def log_big(self) -> registry.Artifact:
        """The artifact every puller fetches, logged in this process through gateway 0."""
        args = self.args
        source = self.base / "big-source"
        began = time.perf_counter()
        self.big_hashes = generate(source, args.size_mib * MiB, args.files)
        print(f"generated {args.files} x {args.size_mib / args.files:g} MiB in {time.perf_counter() - began:.1f} s", flush=True)
        os.environ.update(self.cluster.env(0))
        os.environ["REGISTRY_CACHE_DIR"] = str(self.base / "cache-logger")
        began = time.perf_counter()
        with registry.init(project=PROJECT, job_type="load-setup", url=self.url) as run:
            art = registry.Artifact(BIG, type="dataset")
            art.add_dir(str(source))
            run.log_artifact(art)
        print(f"logged {art.qualified_name} ({args.size_mib} MiB) through gateway 0 in {time.perf_counter() - began:.1f} s", flush=True)
        logged = {f.path: f.sha256 for f in art.file_list().files}
        if logged != self.big_hashes:
            raise RuntimeError(f"{art.qualified_name}'s file list does not match the generated files")
        shutil.rmtree(source)
        return art

    def timed(self, operation: str, jobs: list[Job], per_client: int, workdir: Path) -> Batch:
        before = os.getloadavg()[0]
        wall, outcomes = run_batch(jobs, self.env, workdir, self.args.timeout)
        batch = Batch(operation, len(jobs), per_client, wall, outcomes, (before, os.getloadavg()[0]))
        self.batches.append(batch)
        return batch

    def pull_big(self, art: registry.Artifact, n: int) -> None:
        work = self.workdir(f"pull-{n}")
        jobs = [Job([*CLI, "pull", f"{PROJECT}/{BIG}:latest", "-d", str(work / f"dir-{i}"), "--json"], i % 2,
                    client_env(self.cluster, i % 2, work / f"cache-{i}")) for i in range(n)]
        batch = self.timed(f"pull {self.args.size_mib} MiB", jobs, art.size, work)
        began = time.perf_counter()
        for o in batch.outcomes:
            o.error = o.error or self.check_pull(art, o, work / f"dir-{o.index}")
        print(f"  verified {n} download(s) in {time.perf_counter() - began:.1f} s", flush=True)
        self.summarize(batch)
        shutil.rmtree(work, ignore_errors=True)

    def check_pull(self, art: registry.Artifact, o: Outcome, root: Path) -> str:
        """Same version, every byte from the store, every file re-hashed against the version."""
        if o.result.get("digest") != f"sha256:{art.digest}":
            return f"pulled {o.result.get('address')} {o.result.get('digest')}, not {art.qualified_name}"
        if o.result.get("fetched_bytes") != art.size:
            return f"fetched {o.result.get('fetched_bytes')} bytes from the store, not {art.size}"
        names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        if names != set(self.big_hashes):
            return f"files in {root}: {sorted(names)}"
        try:
            art.verify(root)
        except registry.IntegrityError as e:
            return str(e)
        return ""

    def push_and_pull_back(self, m: int, repeat: int) -> None:
        args = self.args
        work = self.workdir(f"push-{m}")
        sources = {}
        for i in range(m):
            name = f"push-{m}x-r{repeat}-{i}"
            sources[name] = generate(work / f"src-{i}", args.push_size_mib * MiB, args.push_files)
        jobs = [Job([*CLI, "push", str(work / f"src-{i}"), f"{PROJECT}/{name}", "--type", "dataset", "--json"], i % 2,
                    client_env(self.cluster, i % 2, work / f"cache-{i}")) for i, name in enumerate(sources)]
        batch = self.timed(f"push {args.push_size_mib} MiB", jobs, args.push_size_mib * MiB, work)
        for o in batch.outcomes:
            if not o.error and not (o.result.get("created") and o.result.get("version") is not None):
                o.error = f"push did not create a version: {o.result}"
        self.summarize(batch)
        back = work / "back"
        pulled = [(i, name) for i, name in enumerate(sources) if not batch.outcomes[i].error]
        jobs = [Job([*CLI, "pull", f"{PROJECT}/{name}:latest", "-d", str(back / f"dir-{i}"), "--json"], 1 - i % 2,
                    client_env(self.cluster, 1 - i % 2, back / f"cache-{i}")) for i, name in pulled]
        if jobs:
            again = self.timed("pull back pushed", jobs, args.push_size_mib * MiB, back)
            for o, (i, name) in zip(again.outcomes, pulled):
                if not o.error and sha256_tree(back / f"dir-{i}") != sources[name]:
                    o.error = f"{name}: pulled bytes differ from the pushed ones"
            self.summarize(again)
        shutil.rmtree(work, ignore_errors=True)

    def summarize(self, batch: Batch) -> None:
        lat = sorted(o.seconds for o in batch.outcomes)
        by_gateway = {g: statistics.median([o.seconds for o in batch.outcomes if o.gateway == g])
                      for g in sorted({o.gateway for o in batch.outcomes})}
        print(f"  {batch.operation} x{batch.clients}: {len(batch.outcomes) - len(batch.failed)} ok, {len(batch.failed)} failed, "
              f"wall {batch.wall:.1f} s, {batch.mib_per_s:.0f} MiB/s, latency {lat[0]:.1f}-{lat[-1]:.1f} s, "
              f"median per gateway {', '.join(f'g{g} {s:.1f} s' for g, s in by_gateway.items())}, "
              f"load {batch.load[0]:.1f} -> {batch.load[1]:.1f}", flush=True)
        for o in batch.failed:
            self.problems.append(f"{batch.operation} x{batch.clients} client {o.index} (gateway {o.gateway}): {o.error}")
            print(f"    FAILED client {o.index} (gateway {o.gateway}): {o.error}", flush=True)


# -- report ---------------------------------------------------------------------------------------
def nearest_rank(samples: list[float], q: float) -> float:
    """The q-th percentile by nearest rank: with fewer than 100/(100-q) samples, the maximum."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def report(batches: list[Batch]) -> str:
    """One row per (operation, clients): repeats pooled (latencies) or medianed (throughput)."""
    operations = list(dict.fromkeys(b.operation for b in batches))
    rows: dict[tuple[str, int], list[Batch]] = {}
    for batch in sorted(batches, key=lambda b: (operations.index(b.operation), b.clients)):
        rows.setdefault((batch.operation, batch.clients), []).append(batch)
    header = (f"{'operation':18} {'clients':>7} {'ok/failed':>9} {'MiB/s':>7} {'wall s':>7} {'p50 s':>6} {'p95 s':>6} "
              f"{'p99 s':>6} {'n':>3} | {'x MiB/s':>7} {'x p50':>6}")
    lines = [header, "-" * len(header)]
    baseline: dict[str, tuple[float, float]] = {}
    for (operation, clients), group in rows.items():
        lat = [o.seconds for b in group for o in b.outcomes]
        failed = sum(len(b.failed) for b in group)
        rate = statistics.median(b.mib_per_s for b in group)
        p50 = statistics.median(lat)
        base_rate, base_p50 = baseline.setdefault(operation, (rate, p50))  # the first (fewest) clients
        lines.append(f"{operation:18} {clients:7d} {f'{len(lat) - failed}/{failed}':>9} {rate:7.0f} "
                     f"{statistics.median(b.wall for b in group):7.1f} {p50:6.1f} {nearest_rank(lat, 95):6.1f} "
                     f"{nearest_rank(lat, 99):6.1f} {len(lat):3d} | {rate / base_rate:7.2f} {p50 / base_p50:6.2f}")
    return "\n".join(lines)


NOTES = """\
MiB/s = bytes moved by the clients that succeeded / the batch's wall time (first process started to
last exited), median over repeats. p50 = median latency of one process (start-up included), repeats
pooled; p95/p99 by nearest rank, so with fewer than 20 (p95) or 100 (p99) samples they are the
slowest sample. n = samples. x MiB/s, x p50 = ratio to the first row of the same operation (the
fewest clients). Gateways alternate 0, 1, 0, ... per client; pull-back uses the other gateway."""


# -- main -------------------------------------------------------------------------------------------
def counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256, help="size of the pulled artifact (default 256)")
    parser.add_argument("--files", type=int, default=8, help="files in the pulled artifact (default 8)")
    parser.add_argument("--clients", type=counts, default=[1, 4, 16], help="concurrent pullers per batch (default 1,4,16)")
    parser.add_argument("--pushers", type=counts, default=[1, 8], help="concurrent pushers per batch (default 1,8)")
    parser.add_argument("--push-size-mib", type=int, default=32, help="size of each pushed artifact (default 32)")
    parser.add_argument("--push-files", type=int, default=4, help="files in each pushed artifact (default 4)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a batch may take before its processes are killed")
    parser.add_argument("--tmp", default=None, help="parent directory for the cluster, data and downloads (default $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    return parser.parse_args()


def raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, raise_interrupt)  # like Ctrl-C: the finally below stops everything
    began, load_before = time.perf_counter(), os.getloadavg()
    base = Path(tempfile.mkdtemp(prefix="registry-load-", dir=args.tmp))
    cluster = SeaweedCluster(base / "cluster", bucket=BUCKET)
    print(f"temp dir {base}; starting the SeaweedFS cluster...", flush=True)
    try:
        cluster.start()
        print(f"cluster up in {time.perf_counter() - began:.1f} s: gateways {cluster.endpoint_url(0)}, {cluster.endpoint_url(1)}", flush=True)
        bench = Bench(cluster, base, args)
        art = bench.log_big()
        for repeat in range(args.repeats):
            for n in args.clients:
                bench.pull_big(art, n)
            for m in args.pushers:
                bench.push_and_pull_back(m, repeat)
    finally:
        for proc in CHILDREN:
            stop(proc)
        cluster.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    wall, load_after = time.perf_counter() - began, os.getloadavg()
    table = report(bench.batches)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    load_note = (f"load average (1, 5, 15 min) {' '.join(f'{x:.1f}' for x in load_before)} before, "
                 f"{' '.join(f'{x:.1f}' for x in load_after)} after, on {os.cpu_count()} CPUs (shared with other work)")
    print(f"\n$ {command}\npulled: {art.qualified_name}, {args.files} x {args.size_mib / args.files:g} MiB; "
          f"pushed: {args.push_files} x {args.push_size_mib / args.push_files:g} MiB each; repeats {args.repeats}\n")
    print(table)
    print(NOTES)
    print(load_note)
    print(f"whole run {wall:.0f} s; failures: {len(bench.problems)}")
    for problem in bench.problems:
        print(f"  {problem}")
    if args.out:
        args.out.write_text(json.dumps({"command": command, "table": table, "wall_s": wall, "load": [load_before, load_after],
                                        "problems": bench.problems,
                                        "batches": [{**b.__dict__, "outcomes": [o.__dict__ for o in b.outcomes]}
                                                    for b in bench.batches]}, indent=2, default=str))
    return 1 if bench.problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: every client process and the cluster were stopped", file=sys.stderr)
        sys.exit(130)
