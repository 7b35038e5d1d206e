"""Is issue 15's "cold upload and download <= 0.7 x plain boto3" reachable at all for large files?

A benchmark, not a test. Against its own SeaweedFS on loopback (``tests/servers.py``) it times,
side by side and each operation in a FRESH subprocess (wall time with interpreter start-up, the
child's user+system CPU and peak RSS, as ``transfer.py`` does), W2 (64 x 16 MiB) and W3 (one
1 GiB file) uploaded and downloaded by:

- ``boto3``: ``transfer.py``'s baseline, 16 threads of ``upload_file`` / ``download_file``.
- ``ob mem``: raw obstore 0.12 with no hashing at all (unsigned payload, no checksum) moving bytes
  already in memory (a 16 MiB random block, reused) and dropping what it downloads: the fastest
  any client can be, i.e. the server's floor. Objects up to 16 MiB go as one PUT / GET, 16 files
  in flight; larger ones as a multipart upload of 16 MiB parts and ranged GETs of 8 MiB, 8 in
  flight (threads calling obstore's blocking functions, which release the GIL).
- ``ob disk``: the same, reading the source files and writing the downloads to files.
- ``registry``: format 2, ``transfer_workers``' REG_LOG / REG_DOWNLOAD, cold (fresh caches and prefix).

Who goes first alternates per repeat; figures are medians. "floor" = ob mem / boto3: when it is
above 0.7, no client could meet the target on this machine. ``vmstat``'s steal column is printed
before and after, to say how noisy the machine was.

    python benchmarks/wire_floor.py --repeats 3    # full size: about 2 x 1 GiB per workload and contender
    python benchmarks/wire_floor.py --scale 0.1 --repeats 1    # a quick check
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from transfer import warm_up
from transfer_data import generate, same_tree, workloads
from transfer_runner import Result, Runner
from transfer_workers import BOTO_DOWN, BOTO_UP, REG_DOWNLOAD, REG_LOG

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import SeaweedServer

OBSTORE = r'''
import os, sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
import obstore as obs
from obstore.store import S3Store
op, mode, bucket, prefix, root, count, size = sys.argv[1:8]
count, size, PART, RANGE = int(count), int(size), 16 << 20, 8 << 20
e = os.environ
store = S3Store(bucket, prefix=prefix, client_options={"allow_http": True, "timeout": timedelta(minutes=10)},
                config={"endpoint": e["AWS_ENDPOINT_URL"], "region": e["AWS_DEFAULT_REGION"], "unsigned_payload": True,
                        "access_key_id": e["AWS_ACCESS_KEY_ID"], "secret_access_key": e["AWS_SECRET_ACCESS_KEY"]})
name = "f{:05d}.bin".format
block = memoryview(os.urandom(min(size, PART))) if mode == "mem" else None
def blocks():
    left = size
    while left:
        yield block[:min(left, len(block))]
        left -= min(left, len(block))
def source(i):
    if mode == "disk":
        return Path(root, name(i))
    return block[:size] if size <= PART else blocks()
def up(i):
    obs.put(store, name(i), source(i), chunk_size=PART, max_concurrency=8)
def down(i):
    fd = os.open(Path(root, name(i)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if mode == "disk" else None
    def piece(start, end=None):
        data = obs.get_range(store, name(i), start=start, end=end or min(start + RANGE, size))
        if fd is not None:
            os.pwrite(fd, data, start)
        return len(data)
    if size <= PART:
        got = piece(0, size)
    else:
        with ThreadPoolExecutor(8) as ranges:
            got = sum(ranges.map(piece, range(0, size, RANGE)))
    if fd is not None:
        os.close(fd)
    assert got == size, (name(i), got, size)
with ThreadPoolExecutor(16) as files:
    list(files.map(up if op == "up" else down, range(count)))
'''
WHO = ["boto3", "ob mem", "ob disk", "registry"]
BUCKET = "wire-floor"


def operation(who: str, op: str, wl, tag: str, src: Path, work: Path) -> tuple[str, list[object], dict[str, str]]:
    """The worker, its arguments and environment for ``who`` doing ``op`` (up / down) on ``wl``."""
    prefix, dest = f"{tag}-{who.replace(' ', '-')}", work / f"{who.replace(' ', '-')}-dl"
    if who == "boto3":
        return (BOTO_UP, [BUCKET, prefix, src], {}) if op == "up" else (BOTO_DOWN, [BUCKET, prefix, dest], {})
    if who.startswith("ob "):
        dest.mkdir(parents=True, exist_ok=True)
        return OBSTORE, [op, who[3:], BUCKET, prefix, src if op == "up" else dest, wl.count, wl.size], {}
    env = {"REGISTRY_URL": f"s3://{BUCKET}/{prefix}", "REGISTRY_PROJECT": "bench", "REGISTRY_FORMAT": "2",
           "REGISTRY_CACHE_DIR": str(work / f"cache-{op}"), "BENCH_NO_COUNT": "1"}
    return (REG_LOG, [src, "data"], env) if op == "up" else (REG_DOWNLOAD, ["data", dest], env)


def run_repeat(wl, rep: int, src: Path, base: Path, runner: Runner) -> dict[tuple[str, str], Result]:
    tag, work = f"{wl.name}-r{rep}-{os.getpid()}", base / f"work-{wl.name}-r{rep}"
    out = {}
    for op in ("up", "down"):
        for who in WHO if rep % 2 == 0 else WHO[::-1]:
            code, argv, env = operation(who, op, wl, tag, src, work)
            r = out[who, op] = runner.python(code, *argv, env=env, label=f"{wl.name} {who} {op}")
            print(f"    {wl.name} r{rep} {op:4s} {who:8s} {r.wall:7.2f} s  cpu {r.cpu:6.2f} s  {r.rss_mb:5.0f} MB",
                  flush=True)
    for who in ("boto3", "ob disk", "registry"):
        if not same_tree(src, work / f"{who.replace(' ', '-')}-dl", full=False):
            raise RuntimeError(f"{who}'s download does not hold the files of {src}")
    shutil.rmtree(work, ignore_errors=True)
    return out


def steal(label: str) -> None:
    """``vmstat 1 3`` and its steal column (the first line is the average since boot)."""
    try:
        lines = subprocess.run(["vmstat", "1", "3"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"vmstat {label}: unavailable ({exc})")
        return
    column = lines[1].split().index("st")
    print(f"vmstat 1 3 {label}: steal % = {', '.join(line.split()[column] for line in lines[2:])} "
          f"(first: since boot); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)


def report(results: dict[str, dict[tuple[str, str], list[Result]]]) -> list[str]:
    head = f"{'workload':8s} {'op':4s} | {'boto3 s':>7s} | " + " | ".join(
        f"{w + ' s':>11s} {'ratio':>5s}" for w in WHO[1:]) + f" | {'floor':>5s} | CPU s " + "/".join(WHO)
    lines = [head, "-" * len(head)]
    for name, cells in results.items():
        for op in ("up", "down"):
            wall = {w: statistics.median(r.wall for r in cells[w, op]) for w in WHO}
            cpu = "/".join(f"{statistics.median(r.cpu for r in cells[w, op]):.1f}" for w in WHO)
            floor = wall["ob mem"] / wall["boto3"]
            lines.append(f"{name:8s} {op:4s} | {wall['boto3']:7.2f} | " + " | ".join(
                f"{wall[w]:11.2f} {wall[w] / wall['boto3']:5.2f}" for w in WHO[1:]) + f" | {floor:5.2f} | {cpu}")
            verdict = "BELOW the floor: impossible for any client" if floor > 0.7 else "above the floor: reachable"
            lines.append(f"{'':13s}-> 0.7 x boto3 = {0.7 * wall['boto3']:.2f} s is {verdict} (floor {floor:.2f})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the file sizes (W2: 16 MiB, W3: 1 GiB)")
    parser.add_argument("--tmp", default=None, help="parent of the temp directory (default: $TMPDIR)")
    args = parser.parse_args()
    steal("before")
    base = Path(tempfile.mkdtemp(prefix="wire-floor-", dir=args.tmp))
    server = SeaweedServer(base / "weed")
    results: dict[str, dict[tuple[str, str], list[Result]]] = {}
    try:
        server.start()
        server.make_bucket(BUCKET)
        warm_up(server, [BUCKET])
        runner = Runner(server.env(), base, None)
        for wl in (workloads(args.scale)[n] for n in ("W2", "W3")):
            src = base / "data" / wl.name
            generate(wl, src)
            print(wl.describe(), flush=True)
            for rep in range(args.repeats):
                for key, r in run_repeat(wl, rep, src, base, runner).items():
                    results.setdefault(wl.name, {}).setdefault(key, []).append(r)
            shutil.rmtree(src, ignore_errors=True)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    steal("after")
    print(f"\n$ python {' '.join(sys.argv)}\nmedians of {args.repeats}; seconds are wall time of a fresh subprocess; "
          "ratio = contender / boto3; floor = ob mem / boto3 (the best any client could do)")
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
