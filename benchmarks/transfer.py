"""Transfer and cache benchmark (issue 4): registry vs. a plain boto3 baseline on SeaweedFS.

A benchmark, not a test. It starts its own SeaweedFS (``tests/servers.py``), generates random
data in a temp dir and runs, per workload and repeat, every operation as a FRESH SUBPROCESS
(``python -c ...``), so each figure is wall time with interpreter start-up included, like a CLI
tool. It also records the child's user+system CPU time and its peak RSS (GNU ``time``):

=====================  =======================================  ===================================
operation              registry                                 boto3 baseline (16 threads)
=====================  =======================================  ===================================
cold upload            ``run.log_artifact`` of ``add_dir``,     put_object (< 8 MiB) /
                       empty hash db and cache, empty prefix    upload_file (default TransferConfig)
unchanged re-log       the same dir logged again                everything uploaded again
                       (must hash nothing, upload nothing)      (plain boto3 has no change detection)
1 % changed            log after rewriting 4 KiB in 1 % of      everything uploaded again
                       the files (W3: the one file, so a full
                       re-upload for both)
cold download          ``Api().artifact(..).download(dir)``     list + get_object (< 8 MiB) /
                       with a fresh REGISTRY_CACHE_DIR          download_file
repeat download        same cache, a NEW directory              downloaded again (no cache);
                                                                ``cp -al`` of the tree is the floor
=====================  =======================================  ===================================

The registry workers count the files they hash and the S3 requests they send (a botocore
event hook) and the per-run log prints them, which proves e.g. that an unchanged re-log hashes
and uploads nothing and that a repeat download sends no blob GET. The baseline client gets
``max_pool_connections=16`` to match its 16 threads.

Workloads: W1 2,000 x 64 KiB, W2 64 x 16 MiB, W3 one 1 GiB file. ``--scale`` shrinks them
(W1: file count, W2 and W3: file size). Figures are medians of ``--repeats``; each repeat uses
a fresh store prefix and fresh caches; who goes first alternates. Targets from the issue are
printed next to the figures (they only apply to ``--scale 1``). Results also go to
``benchmarks/out/transfer.json``. On a shared machine, compare within one run (ratio columns)
and the CPU columns rather than absolute wall times; ``--registry-src-b`` runs a second copy of
the library interleaved with the first, to A/B a fix under the same load.

    python benchmarks/transfer.py                         # full run, 3 repeats (~10-15 min)
    python benchmarks/transfer.py --scale 0.05 --repeats 1 --workloads W1,W2
    python benchmarks/transfer.py --registry-src /tmp/a --registry-src-b /tmp/b   # A/B two copies
    python benchmarks/transfer.py --link-mode-b hardlink  # also with hardlinked downloads (opt-in)
    python benchmarks/transfer.py --py-spy /tmp/prof      # profile registry ops (timings void)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import SeaweedServer

KiB, MiB, GiB = 1024, 1024**2, 1024**3
TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None  # GNU time, for peak RSS
OPS = ["cold upload", "unchanged re-log", "1% changed", "cold download", "repeat download", "repeat (hardlink)"]

RSS_TARGET_MB = 300
LINK_MODE_B: str | None = None
FLOOR = {"repeat download": "cp -r", "repeat (hardlink)": "cp -al"}
"""The plain copy each repeat download is measured against (copy mode vs cp -r, hardlink vs cp -al)."""


def target_for(op: str, boto: float | None, floor: float | None) -> tuple[str, float | None]:
    """Issue 15's target for ``op`` in seconds, as a formula and its value in this run."""
    if op in ("cold upload", "cold download"):
        return "0.7 x boto3", 0.7 * boto if boto else None
    if op == "repeat download":
        return "1.5 x cp -r + 0.3", 1.5 * floor + 0.3 if floor is not None else None
    if op == "repeat (hardlink)":
        return "2 x cp -al + 0.3", 2 * floor + 0.3 if floor is not None else None
    return "-", None


# ---------------------------------------------------------------------------------------------
# Worker programs, each run as ``python -c CODE args...`` in a fresh interpreter.
# The registry workers count hashed files and S3 requests (a botocore event hook: negligible
# cost) and print one ``STATS {json}`` line, so the report can prove what a step really did.
# ---------------------------------------------------------------------------------------------
_REG_PRELUDE = r'''
import json, os, sys
_calls, _hashed = [], []  # list.append is atomic under the GIL: no lock, no contention
def _stats():
    requests = {}
    for name in _calls:
        requests[name] = requests.get(name, 0) + 1
    return {"hashed_files": len(_hashed), "hashed_bytes": sum(_hashed), "requests": requests}
if os.environ.get("BENCH_NO_COUNT"):
    import registry
else:
    import importlib.util
    if importlib.util.find_spec("backends.s3_obstore") is None or os.environ.get("REGISTRY_S3_ENGINE") == "botocore":
        # older code, or the botocore engine: count through botocore's hook (importing botocore
        # here costs the worker ~0.15 s of start-up, so it is done only when botocore is in use)
        import backends.s3 as _s3
        _maker = "make_client" if hasattr(_s3, "make_client") else "_make_client"  # newer / older code
        _make = getattr(_s3, _maker)
        def _count(model, **kw):
            _calls.append(model.name)
        def _make_counted():
            client = _make()
            client.meta.events.register("before-call.s3", _count)
            return client
        setattr(_s3, _maker, _make_counted)
    try:  # the obstore engine: count its calls (a multipart upload counts once, as "MultipartUpload")
        import obstore as _ob
        def _counted(fn, label):
            def call(*a, **k):
                _calls.append("MultipartUpload" if label == "PutObject" and k.get("use_multipart") else label)
                return fn(*a, **k)
            return call
        for _fn, _label in (("get", "GetObject"), ("get_range", "GetObject(range)"), ("head", "HeadObject"),
                            ("put", "PutObject"), ("delete", "DeleteObject"), ("list", "ListObjectsV2"),
                            ("list_with_delimiter", "ListObjectsV2")):
            setattr(_ob, _fn, _counted(getattr(_ob, _fn), _label))
    except ImportError:
        pass
    import importlib
    import registry, registry.hashing as _h
    _sha_file = _h.sha256_file
    def _counted_sha(path):
        _hashed.append(os.path.getsize(path))
        return _sha_file(path)
    for _name in ("registry.hashing", "registry.blobs", "registry.cache", "registry.download_root"):
        try:
            _module = importlib.import_module(_name)
        except ImportError:
            continue
        if hasattr(_module, "sha256_file"):
            _module.sha256_file = _counted_sha
STATS = {}
'''

REG_LOG = _REG_PRELUDE + r'''
src, name = sys.argv[1], sys.argv[2]
with registry.init(project="bench", job_type="bench") as run:
    art = registry.Artifact(name, type="dataset")
    art.add_dir(src)
    run.log_artifact(art)
    STATS["version"] = art.version
    STATS["created"] = art.created
print("STATS " + json.dumps({**_stats(), **STATS}))
'''

REG_DOWNLOAD = _REG_PRELUDE + r'''
name, dest = sys.argv[1], sys.argv[2]
art = registry.Api().artifact(f"bench/{name}:latest")
if hasattr(art, "pull"):  # the download report (older code kept it in art.last_download)
    report = art.pull(dest)
else:
    art.download(dest)
    report = art.last_download
STATS["version"] = art.version
STATS["placed"] = len(report.placed)
STATS["unchanged"] = len(report.unchanged)
print("STATS " + json.dumps({**_stats(), **STATS}))
'''

_BOTO_PRELUDE = r'''
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
SMALL = 8 * 1024 * 1024
s3 = boto3.client("s3", config=Config(max_pool_connections=16))
'''

BOTO_UP = _BOTO_PRELUDE + r'''
bucket, prefix, root = sys.argv[1], sys.argv[2], sys.argv[3]
files = []
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        files.append((p, prefix + "/" + os.path.relpath(p, root).replace(os.sep, "/")))
def one(item):
    path, key = item
    if os.path.getsize(path) < SMALL:
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f)
    else:
        s3.upload_file(path, bucket, key)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(one, files))
print("STATS {\"files\": %d}" % len(files))
'''

BOTO_DOWN = _BOTO_PRELUDE + r'''
bucket, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]
objects = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    objects += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
def one(item):
    key, size = item
    path = os.path.join(dest, key[len(prefix) + 1:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if size < SMALL:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(path, "wb") as f:
            for chunk in body.iter_chunks(1 << 20):
                f.write(chunk)
    else:
        s3.download_file(bucket, key, path)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(one, objects))
print("STATS {\"files\": %d}" % len(objects))
'''


@dataclass
class Result:
    wall: float
    rss_mb: float
    cpu: float = 0.0
    """user + system CPU seconds of the child (less sensitive than wall time to a busy machine)"""
    stats: dict = field(default_factory=dict)


class Runner:
    def __init__(self, env: dict[str, str], cwd: Path, py_spy: Path | None) -> None:
        self.env = env
        self.cwd = cwd
        self.py_spy = py_spy

    def run(self, argv: list[str], env: dict[str, str] | None = None, label: str = "", src: str | None = None,
            profile: bool = False) -> Result:
        """Run ``argv`` to completion: wall time, CPU time and peak RSS of that one child.

        ``src`` goes first on PYTHONPATH (a patched copy of the library); ``profile`` wraps the
        child in py-spy when ``--py-spy`` is given.
        """
        full_env = {**os.environ, **self.env, **(env or {})}
        if src:
            full_env["PYTHONPATH"] = src + os.pathsep + full_env.get("PYTHONPATH", "")
        if profile and self.py_spy:
            self.py_spy.mkdir(parents=True, exist_ok=True)
            out = self.py_spy / (label.replace(" ", "_").replace("%", "pct") + ".txt")
            argv = ["py-spy", "record", "--threads", "--rate", "250", "--format", "raw", "-o", str(out), "--"] + argv
        os.sync()  # do not let write-back from the previous step land in this one
        start = time.perf_counter()
        # Peak RSS: Linux carries the pre-exec high-water mark across exec, so a child forked
        # straight from this (large) interpreter would report at least our own RSS. GNU time
        # forks the child from a tiny process and reports the child's own maximum.
        fd, rss_path = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        if TIME_BIN:
            argv = [TIME_BIN, "-f", "%M", "-o", rss_path, *argv]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, env=full_env, cwd=self.cwd, stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: this child's own rusage
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        try:
            rss_kb = int(Path(rss_path).read_text().split()[-1]) if TIME_BIN else usage.ru_maxrss
        except (ValueError, IndexError):
            rss_kb = usage.ru_maxrss
        os.unlink(rss_path)
        if proc.returncode != 0:
            raise RuntimeError(f"{label} failed ({proc.returncode}):\n{stderr.decode(errors='replace')[-3000:]}")
        stats = {}
        for line in stdout.decode().splitlines():
            if line.startswith("STATS "):
                stats = json.loads(line[6:])
        return Result(wall, rss_kb / 1024, usage.ru_utime + usage.ru_stime, stats)

    def python(self, code: str, *args: str, env: dict[str, str] | None = None, label: str = "", src: str | None = None,
               profile: bool = False) -> Result:
        return self.run([sys.executable, "-c", code, *map(str, args)], env=env, label=label, src=src, profile=profile)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass
class Workload:
    name: str
    count: int
    size: int

    def describe(self) -> str:
        return f"{self.name}: {self.count} x {human(self.size)} = {human(self.count * self.size)}"

    def rel(self, i: int) -> str:
        return f"d{i // 100:03d}/f{i:05d}.bin" if self.count > 100 else f"f{i:05d}.bin"


def workloads(scale: float) -> dict[str, Workload]:
    return {
        "W1": Workload("W1", max(10, round(2000 * scale)), 64 * KiB),
        "W2": Workload("W2", 64, max(64 * KiB, int(16 * MiB * scale))),
        "W3": Workload("W3", 1, max(MiB, int(GiB * scale))),
    }


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


def generate(wl: Workload, root: Path) -> None:
    for i in range(wl.count):
        write_random(root / wl.rel(i), wl.size)


def change_one_percent(wl: Workload, root: Path) -> int:
    """Rewrite 4 KiB at the start of ceil(1 %) of the files (at least one); returns how many."""
    n = max(1, math.ceil(wl.count / 100))
    step = wl.count // n
    for k in range(n):
        with open(root / wl.rel(k * step), "r+b") as f:
            f.write(os.urandom(4 * KiB))
    return n


def same_tree(a: Path, b: Path, full: bool) -> bool:
    import filecmp

    def listing(root: Path) -> dict[str, int]:
        return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}

    la, lb = listing(a), listing(b)
    if la != lb:
        return False
    return not full or all(filecmp.cmp(a / p, b / p, shallow=False) for p in la)


# ---------------------------------------------------------------------------------------------
# One repeat of one workload
# ---------------------------------------------------------------------------------------------
def run_repeat(wl: Workload, rep: int, base: Path, runner: Runner, args) -> dict[str, dict]:
    """Every operation once for each contender, interleaved (who goes first alternates per repeat)."""
    tag = f"{wl.name.lower()}-r{rep}-{os.getpid()}"
    work = base / tag
    src = base / "data" / wl.name
    name = f"data-{wl.name.lower()}"
    registries = {"registry": args.registry_src}
    if args.registry_src_b or args.link_mode_b:
        registries["registry B"] = args.registry_src_b or args.registry_src

    def envs(who: str) -> tuple[dict[str, str], dict[str, str]]:
        sub = tag + ("-b" if who == "registry B" else "")
        up = {"REGISTRY_URL": f"s3://{args.reg_bucket}/{sub}", "REGISTRY_PROJECT": "bench",
              "REGISTRY_CACHE_DIR": str(work / f"cache-up-{sub}")}
        if who == "registry B" and args.link_mode_b:
            up["REGISTRY_LINK_MODE"] = args.link_mode_b
        return up, {**up, "REGISTRY_CACHE_DIR": str(work / f"cache-dl-{sub}")}

    out: dict[str, dict] = {op: {} for op in OPS}

    def step(op: str, fns: dict) -> None:
        order = list(fns.items())
        if rep % 2:
            order.reverse()
        for who, fn in order:
            r = fn()
            out[op][who] = r
            extra = ""
            if who.startswith("registry") and r.stats:
                st = r.stats
                extra = f"  hashed={st.get('hashed_files')} files/{human(st.get('hashed_bytes', 0))} requests={st.get('requests')}"
                for k in ("version", "created", "placed", "unchanged"):
                    if k in st:
                        extra += f" {k}={st[k]}"
            print(f"    {wl.name} r{rep} {op:17s} {who:10s} {r.wall:7.2f} s  cpu {r.cpu:6.2f} s {r.rss_mb:6.0f} MB{extra}", flush=True)

    def reg_log(who: str, label: str):
        return lambda: runner.python(REG_LOG, src, name, env=envs(who)[0], label=f"{wl.name}-r{rep}-{who}-{label}",
                                     src=registries[who], profile=True)

    def reg_download(who: str, dest: Path, label: str, link_mode: str | None = None):
        env = envs(who)[1] | ({"REGISTRY_LINK_MODE": link_mode} if link_mode else {})
        return lambda: runner.python(REG_DOWNLOAD, name, dest, env=env, label=f"{wl.name}-r{rep}-{who}-{label}",
                                     src=registries[who], profile=True)

    def boto_up(label: str):
        return lambda: runner.python(BOTO_UP, args.boto_bucket, tag, src, label=f"boto3 {label}")

    def boto_down(dest: Path, label: str):
        return lambda: runner.python(BOTO_DOWN, args.boto_bucket, tag, dest, label=f"boto3 {label}")

    for op in ("cold upload", "unchanged re-log"):
        step(op, {**{who: reg_log(who, op) for who in registries}, "boto3": boto_up(op)})
    changed = change_one_percent(wl, src)
    print(f"    ({wl.name}: rewrote 4 KiB in {changed} of {wl.count} file(s))", flush=True)
    step("1% changed", {**{who: reg_log(who, "1% changed") for who in registries}, "boto3": boto_up("1% changed")})

    def dest(who: str, n: int) -> Path:
        return work / f"{who.replace(' ', '-')}-dl{n}"

    step("cold download", {**{who: reg_download(who, dest(who, 1), "cold download") for who in registries},
                           "boto3": boto_down(dest("boto3", 1), "cold download")})
    step("repeat download", {**{who: reg_download(who, dest(who, 2), "repeat download", "copy") for who in registries},
                             "boto3": boto_down(dest("boto3", 2), "repeat download")})
    step("repeat (hardlink)", {who: reg_download(who, dest(who, 3), "repeat hardlink", "hardlink") for who in registries})
    for op, floor_cmd in (("repeat download", ["cp", "-r"]), ("repeat (hardlink)", ["cp", "-al"])):
        floor = runner.run([*floor_cmd, str(dest("registry", 1)), str(work / floor_cmd[1])], label=" ".join(floor_cmd))
        out[op][" ".join(floor_cmd)] = floor
        print(f"    {wl.name} r{rep} {op:17s} {' '.join(floor_cmd):10s} {floor.wall:7.2f} s  cpu {floor.cpu:6.2f} s", flush=True)

    for who in [*registries, "boto3"]:
        for n in (1, 2, 3) if who != "boto3" else (1,):
            if not same_tree(src, dest(who, n), full=args.verify):
                raise RuntimeError(f"{dest(who, n)} does not hold the same files as {src}")
    shutil.rmtree(work, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def median(results: list[Result], attr: str) -> float | None:
    values = [getattr(r, attr) for r in results]
    return statistics.median(values) if values else None


def fmt(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def requests_of(results: list[Result]) -> str:
    """The S3 calls of the median-time sample, e.g. ``GetObject:2001 HeadObject:1``."""
    if not results:
        return ""
    ordered = sorted(results, key=lambda r: r.wall)
    counts = ordered[len(ordered) // 2].stats.get("requests") or {}
    return " ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def report(collected: dict[str, dict[str, dict[str, list[Result]]]], wls: dict[str, Workload], scale: float) -> tuple[str, dict]:
    header = (f"{'workload':8s} {'operation':17s} {'registry s':>10s} {'boto3 s':>8s} {'ratio':>6s} {'floor s':>8s} "
              f"{'target':>18s} {'= s':>6s} {'verdict':>7s} {'reg CPU':>7s} {'boto CPU':>8s} {'reg RSS':>7s}  requests (registry)")
    lines = [header, "-" * len(header)]
    summary: dict = {}
    for wl_name, ops in collected.items():
        summary[wl_name] = {}
        for op in OPS:
            cell = ops[op]
            m = {who: {attr: median(rs, attr) for attr in ("wall", "cpu", "rss_mb")} for who, rs in cell.items()}

            def get(who: str, attr: str, m: dict = m) -> float | None:
                return m.get(who, {}).get(attr)

            reg, boto = get("registry", "wall"), get("boto3", "wall")
            floor = get(FLOOR[op], "wall") if op in FLOOR else None
            formula, target = target_for(op, boto, floor)
            verdict = "-" if target is None or reg is None else ("ok" if reg <= target else "MISSED")
            ratio = reg / boto if reg and boto else None
            lines.append(
                f"{wl_name:8s} {op:17s} {fmt(reg):>10s} {fmt(boto):>8s} {fmt(ratio):>6s} {fmt(floor):>8s} "
                f"{formula:>18s} {fmt(target):>6s} {verdict:>7s} {fmt(get('registry', 'cpu')):>7s} "
                f"{fmt(get('boto3', 'cpu')):>8s} {fmt(get('registry', 'rss_mb'), 0):>7s}  {requests_of(cell.get('registry', []))}"
            )
            summary[wl_name][op] = {
                "registry_s": reg, "boto3_s": boto, "ratio": ratio, "floor_s": floor, "target": formula,
                "target_s": target, "verdict": verdict, "registry_cpu_s": get("registry", "cpu"),
                "boto3_cpu_s": get("boto3", "cpu"), "registry_rss_mb": get("registry", "rss_mb"),
                "samples": {who: [r.__dict__ for r in rs] for who, rs in cell.items()},
            }
            if "registry B" in cell:
                b = get("registry B", "wall")
                summary[wl_name][op].update({"registry_b_s": b, "registry_b_cpu_s": get("registry B", "cpu")})
                lines.append(f"{'':8s} {'  B':17s} {fmt(b):>10s} {'':8s} {fmt(b / boto if b and boto else None):>6s} "
                             f"{'B/A ' + fmt(b / reg if b and reg else None):>36s} {fmt(get('registry B', 'cpu')):>14s}"
                             f"  {requests_of(cell.get('registry B', []))}")
        lines.append("")
    if "W3" in collected:
        rss = [r.rss_mb for op in OPS for r in collected["W3"][op].get("registry", [])]
        if rss:
            lines.append(f"W3 registry peak RSS (max over all operations): {max(rss):.0f} MB; target < {RSS_TARGET_MB} MB "
                         f"({'ok' if max(rss) < RSS_TARGET_MB else 'MISSED'})")
    lines.append("Wall time of a fresh subprocess each (start-up included), medians; CPU = user+system s of the subprocess.")
    lines.append("boto3 (16 threads) re-uploads everything on re-log / 1% rows and downloads again on repeat rows.")
    lines.append("Targets (issue 15): cold upload/download <= 0.7 x boto3; repeat download into a new directory")
    lines.append("<= 1.5 x cp -r + 0.3 s (REGISTRY_LINK_MODE=copy) and <= 2 x cp -al + 0.3 s (hardlink); peak RSS < 300 MB on W3.")
    if scale != 1.0:
        lines.append(f"(scaled run, --scale {scale}: the targets are meant for --scale 1)")
    return "\n".join(lines), summary


def warm_up(server: SeaweedServer, buckets: list[str]) -> None:
    """SeaweedFS grows a bucket's volumes on its first writes (seconds): do that before timing."""
    from concurrent.futures import ThreadPoolExecutor

    client = server.client(max_pool_connections=16)
    for bucket in buckets:
        keys = [f"_warmup/{i}" for i in range(64)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k, b=bucket: client.put_object(Bucket=b, Key=k, Body=os.urandom(64 * KiB)), keys))
            list(pool.map(lambda k, b=bucket: client.get_object(Bucket=b, Key=k)["Body"].read(), keys))
            list(pool.map(lambda k, b=bucket: client.delete_object(Bucket=b, Key=k), keys))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="W1,W2,W3", help="comma-separated subset of W1,W2,W3")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink data (W1: file count; W2, W3: file size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", default=None, help="parent directory for data, caches and the server (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (and the server data)")
    parser.add_argument("--verify", action="store_true", help="compare downloaded bytes, not only names and sizes")
    parser.add_argument("--registry-src", default=None, help="directory put first on PYTHONPATH for registry workers (a patched copy)")
    parser.add_argument("--registry-src-b", default=None,
                        help="a second library copy, run interleaved with the first as 'registry B' (A/B a fix on a busy machine)")
    parser.add_argument("--link-mode-b", default=None, choices=["auto", "reflink", "hardlink", "copy"],
                        help="run 'registry B' (same library unless --registry-src-b) with this REGISTRY_LINK_MODE")
    parser.add_argument("--py-spy", type=Path, default=None, help="record registry workers with py-spy into this directory (timings void)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "transfer.json")
    args = parser.parse_args()
    args.reg_bucket, args.boto_bucket = "registry-bench", "boto3-bench"
    global LINK_MODE_B
    LINK_MODE_B = args.link_mode_b

    chosen = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    wls = workloads(args.scale)
    unknown = [w for w in chosen if w not in wls]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}: choose from W1, W2, W3")

    base = Path(tempfile.mkdtemp(prefix="registry-bench-", dir=args.tmp))
    server = SeaweedServer(base / "weed")
    print(f"temp dir {base}; starting SeaweedFS...", flush=True)
    t0 = time.perf_counter()
    server.start()
    print(f"SeaweedFS up at {server.endpoint_url} in {time.perf_counter() - t0:.1f} s", flush=True)
    collected: dict[str, dict[str, dict[str, list[Result]]]] = {}
    loads: list[tuple[str, int, float, float]] = []
    try:
        server.make_bucket(args.reg_bucket)
        server.make_bucket(args.boto_bucket)
        warm_up(server, [args.reg_bucket, args.boto_bucket])
        runner = Runner(server.env(), base, args.py_spy)
        for wl_name in chosen:
            wl = wls[wl_name]
            t0 = time.perf_counter()
            generate(wl, base / "data" / wl.name)
            print(f"{wl.describe()} (generated in {time.perf_counter() - t0:.1f} s)", flush=True)
            collected[wl_name] = {op: {} for op in OPS}
            for rep in range(args.repeats):
                load_before = os.getloadavg()[0]
                results = run_repeat(wl, rep, base, runner, args)
                loads.append((wl_name, rep, load_before, os.getloadavg()[0]))
                print(f"    (load average {load_before:.1f} -> {loads[-1][3]:.1f} on {os.cpu_count()} CPUs)", flush=True)
                for op, by_who in results.items():
                    for who, r in by_who.items():
                        collected[wl_name][op].setdefault(who, []).append(r)
            shutil.rmtree(base / "data" / wl.name, ignore_errors=True)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    table, summary = report(collected, wls, args.scale)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print()
    print(f"$ {command}")
    print(f"scale {args.scale}, repeats {args.repeats}; " + "; ".join(wls[w].describe() for w in chosen))
    print(table)
    import boto3
    import botocore

    doc = {
        "command": command,
        "scale": args.scale,
        "repeats": args.repeats,
        "registry_src": args.registry_src,
        "registry_src_b": args.registry_src_b,
        "link_mode_b": args.link_mode_b,
        "profiled": bool(args.py_spy),
        "workloads": {w: wls[w].__dict__ for w in chosen},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "boto3": boto3.__version__, "botocore": botocore.__version__},
        "load_average_per_repeat": loads,
        "results": summary,
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
