"""Transfer and cache benchmark (issues 4, 15, 16): registry vs. a plain boto3 baseline on SeaweedFS.

A benchmark, not a test. It starts its own SeaweedFS (``tests/servers.py``), generates random
data in a temp dir and runs, per workload and repeat, every operation as a FRESH SUBPROCESS
(``python -c ...``, ``transfer_workers.py``), so each figure is wall time with interpreter
start-up included, like a CLI tool. It also records the child's user+system CPU time and its
peak RSS (GNU ``time``), the CPU seconds the S3 server spent meanwhile (per-run lines and the
JSON), and the requests and bytes it saw:

=====================  =======================================  ===================================
operation              registry                                 boto3 baseline (16 threads)
=====================  =======================================  ===================================
cold upload            ``run.log_artifact`` of ``add_dir``,     put_object (< 8 MiB) /
                       empty hash db and cache, empty prefix    upload_file (default TransferConfig)
unchanged re-log       the same dir logged again                everything uploaded again
                       (must hash nothing, upload nothing)      (plain boto3 has no change detection)
1 % changed            log after rewriting 4 KiB (W4: all of    everything uploaded again (W4: not
                       each 1 KiB) in 1 % of the files (W3:     run: it would be a second cold
                       the one file, so a full re-upload)       upload)
cold download          ``Api().artifact(..).download(dir)``     list + get_object (< 8 MiB) /
                       with a fresh REGISTRY_CACHE_DIR          download_file
repeat download        same cache, a NEW directory              downloaded again (no cache);
                                                                ``cp -al`` of the tree is the floor
overwrite 1 %          (W3-edit) log the file with 1 % of its   the whole file uploaded again
                       bytes overwritten in 10 seeded writes
insert 1 KiB           (W3-edit) log the original with 1 KiB    the whole file uploaded again
                       inserted in the middle
=====================  =======================================  ===================================

Workloads: W1 2,000 x 64 KiB, W2 64 x 16 MiB, W3 one 1 GiB file (issue 4); W4 50,000 x 1 KiB
in 50 directories, and W3-edit: W3's file logged, then edited twice (issue 16). ``--scale``
shrinks them (W1, W4: file count; W2, W3, W3-edit: file size). Figures are medians of
``--repeats``; each repeat uses a fresh store prefix and fresh caches; who goes first
alternates. Targets from the issues are printed next to the figures (they only apply to
``--scale 1``). Results also go to ``benchmarks/out/transfer.json``.

Requests and bytes are counted by the server (its Prometheus counters, ``server_traffic.py``),
not in the measured processes, so counting costs neither side any time: ``up`` is the request
body bytes it received (objects and multipart parts), ``down`` the body bytes it sent, ``req``
the requests it answered (HEADs told from GETs by the client's count). The
registry workers also count the files they hash and their obstore calls, printed in the
per-run log, which proves e.g. that an unchanged re-log hashes nothing and a repeat download
sends no blob GET. The baseline client gets ``max_pool_connections=16`` to match its threads.

The store format: ``--format 2`` (default) sets ``REGISTRY_FORMAT`` for the registry workers;
``--formats 1,2`` runs both, as separate columns (f1, f2) beside boto3 in one run. The report
says which schema the versions were actually written in. On a shared machine, compare within
one run (ratio columns) and the CPU columns rather than absolute wall times;
``--registry-src-b`` runs a second copy of the library interleaved with the first (column
``f2 B``), to A/B a fix under the same load.

``--scale-run`` (not run by default, nor in CI) logs one artifact of 1,000,000 x 100 B files in
1,000 directories, then times ``registry show``, ``registry pull --path-prefix`` of a 1 %
sub-directory and a re-log after changing one file (``transfer_scale.py``).

    python benchmarks/transfer.py                         # everything, 3 repeats (about an hour)
    python benchmarks/transfer.py --scale 0.05 --repeats 1 --workloads W4,W3-edit   # a quick look
    python benchmarks/transfer.py --formats 1,2 --workloads W4,W3-edit   # format 1 vs 2 vs boto3
    python benchmarks/transfer.py --workloads W1,W2,W3    # issue 15's figures only
    python benchmarks/transfer.py --scale-run             # 1,000,000 files (no workloads unless asked)
    python benchmarks/transfer.py --scale-run --scale-run-files 100000 --scale-run-tree /tmp/tree
    python benchmarks/transfer.py --registry-src /tmp/a --registry-src-b /tmp/b   # A/B two copies
    python benchmarks/transfer.py --link-mode-b hardlink  # also with hardlinked downloads (opt-in)
    python benchmarks/transfer.py --py-spy /tmp/prof      # profile registry ops (timings void)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transfer_scale
from report_table import Table, fmt, traffic_text, worker_text
from server_traffic import TrafficCounter
from transfer_data import EDIT_TREES, KiB, Workload, change_one_percent, generate, same_tree, workloads
from transfer_runner import Contender, Result, Runner, short, warm_bytecode
from transfer_workers import BOTO_DOWN, BOTO_UP, REG_DOWNLOAD, REG_LOG

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import SeaweedServer  # noqa: E402

OPS = ["cold upload", "unchanged re-log", "1% changed", "cold download", "repeat download", "repeat (hardlink)"]
EDIT_OPS = ["cold upload", "overwrite 1%", "insert 1 KiB"]
"""W3-edit's operations: its original logged, then each edit (``EDIT_TREES``, in this order)."""
BOTO_SKIPPED = {("W4", "1% changed")}
"""Rows without a baseline: boto3 would upload all of W4 again, a second cold upload."""
ALL_WORKLOADS = ["W1", "W2", "W3", "W4", "W3-edit"]

RSS_TARGET_MB = 300
RSS_TARGETED = ("W3", "W4")
"""The workloads whose peak RSS has a target (issue 15: W3; issue 16: W4)."""
FLOOR = {"repeat download": "cp -r", "repeat (hardlink)": "cp -al"}
"""The plain copy each repeat download is measured against (copy mode vs cp -r, hardlink vs cp -al)."""


@dataclass
class Target:
    """An issue's target for one row: a formula, its value in this run, and a bound on bytes uploaded."""

    formula: str = "-"
    seconds: float | None = None
    max_up: float | None = None

    def verdict(self, wall: float | None, up: int | None) -> str:
        if wall is None or (self.seconds is None and self.max_up is None):
            return "-"
        fast = self.seconds is None or wall <= self.seconds
        small = self.max_up is None or (up is not None and up <= self.max_up)
        return "ok" if fast and small else "MISSED"


def target_for(wl: Workload, op: str, boto: float | None, floor: float | None) -> Target:
    """The target for ``op`` of ``wl``: issue 16's for W4 and W3-edit, issue 15's for W1-W3."""
    if wl.name == "W4":
        if op in ("cold upload", "cold download"):
            return Target("0.1 x boto3", 0.1 * boto if boto else None)
        if op == "unchanged re-log":
            return Target("1 s", 1.0)
        if op in ("repeat download", "repeat (hardlink)"):
            return Target("2 s", 2.0)
        return Target()
    if wl.name == "W3-edit":
        if op in EDIT_OPS[1:]:
            return Target("0.25 x boto3, up 3 %", 0.25 * boto if boto else None, 0.03 * wl.size)
        return Target()
    if op in ("cold upload", "cold download"):
        return Target("0.7 x boto3", 0.7 * boto if boto else None)
    if op == "repeat download" and floor is not None:
        return Target("1.5 x cp -r + 0.3", 1.5 * floor + 0.3)
    if op == "repeat (hardlink)" and floor is not None:
        return Target("2 x cp -al + 0.3", 2 * floor + 0.3)
    return Target()


# ---------------------------------------------------------------------------------------------
# One repeat of one workload
# ---------------------------------------------------------------------------------------------
class Repeat:
    """One repeat of one workload: its store prefixes, caches and directories, and ``step``,
    which runs one operation for every contender (who goes first alternates per repeat)."""

    def __init__(self, wl: Workload, rep: int, base: Path, runner: Runner, args) -> None:
        self.wl, self.rep, self.runner, self.args = wl, rep, runner, args
        self.tag = f"{wl.name.lower()}-r{rep}-{os.getpid()}"
        self.work = base / self.tag
        self.name = f"data-{wl.name.lower()}"
        self.out: dict[str, dict[str, Result]] = {}

    def envs(self, c: Contender) -> tuple[dict[str, str], dict[str, str]]:
        """The environment of ``c``'s uploads and of its downloads (same store, another cache)."""
        sub = f"{self.tag}-{c.label.replace(' ', '-')}"
        up = {"REGISTRY_URL": f"s3://{self.args.reg_bucket}/{sub}", "REGISTRY_PROJECT": "bench",
              "REGISTRY_CACHE_DIR": str(self.work / f"cache-up-{sub}"), **c.env}
        return up, {**up, "REGISTRY_CACHE_DIR": str(self.work / f"cache-dl-{sub}")}

    def dest(self, who: str, n: int) -> Path:
        return self.work / f"{who.replace(' ', '-')}-dl{n}"

    def step(self, op: str, fns: dict) -> None:
        order = list(fns.items())
        if self.rep % 2:
            order.reverse()
        for who, fn in order:
            r = fn()
            self.out.setdefault(op, {})[who] = r
            server = f"  server cpu {r.server_cpu:6.2f} s" if r.server_cpu is not None else ""
            print(f"    {self.wl.name} r{self.rep} {op:17s} {who:6s} {r.wall:7.2f} s  cpu {r.cpu:6.2f} s{server} "
                  f"{r.rss_mb:6.0f} MB{traffic_text(r)}{worker_text(r) if who != 'boto3' else ''}", flush=True)

    def reg_log(self, c: Contender, src: Path, label: str):
        return lambda: self.runner.python(REG_LOG, src, self.name, env=self.envs(c)[0], src=c.src,
                                          label=f"{self.wl.name}-r{self.rep}-{c.label}-{label}", profile=True)

    def reg_download(self, c: Contender, dest: Path, label: str, link_mode: str | None = None):
        env = self.envs(c)[1] | ({"REGISTRY_LINK_MODE": link_mode} if link_mode else {})
        return lambda: self.runner.python(REG_DOWNLOAD, self.name, dest, env=env, src=c.src,
                                          label=f"{self.wl.name}-r{self.rep}-{c.label}-{label}", profile=True)

    def boto_up(self, src: Path, label: str):
        return lambda: self.runner.python(BOTO_UP, self.args.boto_bucket, self.tag, src, label=f"boto3 {label}")

    def boto_down(self, dest: Path, label: str):
        return lambda: self.runner.python(BOTO_DOWN, self.args.boto_bucket, self.tag, dest, label=f"boto3 {label}")


def run_repeat(wl: Workload, rep: int, base: Path, runner: Runner, args) -> dict[str, dict[str, Result]]:
    """W1-W4: every operation once for each contender, interleaved."""
    r = Repeat(wl, rep, base, runner, args)
    src = base / "data" / wl.name
    regs = args.contenders

    def boto(op: str, fn) -> dict:
        return {} if (wl.name, op) in BOTO_SKIPPED else {"boto3": fn}

    for op in ("cold upload", "unchanged re-log"):
        r.step(op, {**{c.label: r.reg_log(c, src, op) for c in regs}, "boto3": r.boto_up(src, op)})
    changed = change_one_percent(wl, src)
    print(f"    ({wl.name}: rewrote {min(4 * KiB, wl.size)} B in {changed} of {wl.count} file(s))", flush=True)
    r.step("1% changed", {**{c.label: r.reg_log(c, src, "1% changed") for c in regs},
                          **boto("1% changed", r.boto_up(src, "1% changed"))})
    r.step("cold download", {**{c.label: r.reg_download(c, r.dest(c.label, 1), "cold download") for c in regs},
                             "boto3": r.boto_down(r.dest("boto3", 1), "cold download")})
    r.step("repeat download", {**{c.label: r.reg_download(c, r.dest(c.label, 2), "repeat download", "copy")
                                  for c in regs}, "boto3": r.boto_down(r.dest("boto3", 2), "repeat download")})
    r.step("repeat (hardlink)", {c.label: r.reg_download(c, r.dest(c.label, 3), "repeat hardlink", "hardlink")
                                 for c in regs})
    for op, floor_cmd in (("repeat download", ["cp", "-r"]), ("repeat (hardlink)", ["cp", "-al"])):
        floor = runner.run([*floor_cmd, str(r.dest(regs[0].label, 1)), str(r.work / floor_cmd[1])],
                           label=" ".join(floor_cmd))
        r.out[op][" ".join(floor_cmd)] = floor
        print(f"    {wl.name} r{rep} {op:17s} {' '.join(floor_cmd):6s} {floor.wall:7.2f} s  cpu {floor.cpu:6.2f} s",
              flush=True)

    for who in [*(c.label for c in regs), "boto3"]:
        for n in (1, 2, 3) if who != "boto3" else (1,):
            if not same_tree(src, r.dest(who, n), full=args.verify):
                raise RuntimeError(f"{r.dest(who, n)} does not hold the same files as {src}")
    shutil.rmtree(r.work, ignore_errors=True)
    return r.out


def run_edit_repeat(wl: Workload, rep: int, base: Path, runner: Runner, args) -> dict[str, dict[str, Result]]:
    """W3-edit: the original logged (and uploaded by boto3), then each edit logged again (and the
    whole file uploaded again by boto3), as new versions of one artifact."""
    r = Repeat(wl, rep, base, runner, args)
    root = base / "data" / wl.name
    for op, tree in zip(EDIT_OPS, EDIT_TREES):
        r.step(op, {**{c.label: r.reg_log(c, root / tree, op) for c in args.contenders},
                    "boto3": r.boto_up(root / tree, op)})
    shutil.rmtree(r.work, ignore_errors=True)
    return r.out


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def median(results: list[Result], attr: str) -> float | None:
    values = [getattr(r, attr) for r in results]
    return statistics.median(values) if values else None


def median_sample(results: list[Result]) -> Result | None:
    """The sample of median wall time: its bytes and requests go beside the median time."""
    return sorted(results, key=lambda r: r.wall)[len(results) // 2] if results else None


def report(collected: dict[str, dict[str, dict[str, list[Result]]]], wls: dict[str, Workload], args) -> tuple[str, dict]:
    labels = [c.label for c in args.contenders]
    table = Table([("", [("workload", -8), ("operation", -17)]),
                   ("target", [("formula", 20), ("= s", 6), ("up max", 6)]),
                   *[(f"registry {label}", [("s", 7), ("up", 6), ("down", 6), ("req", 6), ("ratio", 5),
                                             ("verdict", 7)]) for label in labels],
                   ("boto3", [("s", 7), ("up", 6), ("down", 6), ("req", 6)]),
                   ("floor", [("s", 5)]),
                   ("CPU s", [(label, 6) for label in [*labels, "boto3"]]),
                   ("RSS MB", [(label, 6) for label in labels])])
    summary: dict = {}
    for wl_name, ops in collected.items():
        wl = wls[wl_name]
        summary[wl_name] = {}
        for op, cell in ops.items():
            boto = median(cell.get("boto3", []), "wall")
            floor = median(cell[FLOOR[op]], "wall") if FLOOR.get(op) in cell else None
            target = target_for(wl, op, boto, floor)
            row: dict[str, Any] = {"target": target.formula, "target_s": target.seconds, "target_max_up_bytes": target.max_up,
                   "floor_s": floor, "contenders": {},
                   "samples": {who: [dataclasses.asdict(r) for r in rs] for who, rs in cell.items()}}
            groups = [[wl_name, op], [target.formula, fmt(target.seconds), short(target.max_up)]]
            for who in [*labels, "boto3"]:
                results = cell.get(who, [])
                sample, wall = median_sample(results), median(results, "wall")
                ratio = wall / boto if wall and boto and who != "boto3" else None
                verdict = target.verdict(wall, sample.up if sample else None)
                row["contenders"][who] = {
                    "wall_s": wall, "cpu_s": median(results, "cpu"), "rss_mb": median(results, "rss_mb"),
                    "server_cpu_s": sample.server_cpu if sample else None,
                    "up_bytes": sample.up if sample else None, "down_bytes": sample.down if sample else None,
                    "requests": sample.request_count if sample else None,
                    "requests_by_type": sample.requests if sample else None, "ratio": ratio,
                    **({"verdict": verdict} if who != "boto3" else {})}
                cells = [fmt(wall), short(sample.up) if sample else "-", short(sample.down) if sample else "-",
                         str(sample.request_count) if sample and sample.traffic else "-"]
                groups.append(cells + ([fmt(ratio), verdict] if who != "boto3" else []))
            groups.append([fmt(floor)])
            groups.append([fmt(row["contenders"][who]["cpu_s"]) for who in [*labels, "boto3"]])
            groups.append([fmt(row["contenders"][who]["rss_mb"], 0) for who in labels])
            kinds = "; ".join(f"{who} " + " ".join(f"{k}:{n}" for k, n in s.requests.items())
                              for who in labels if (s := median_sample(cell.get(who, []))) and s.traffic)
            table.add(groups, f"  {kinds}" if kinds else "")
            summary[wl_name][op] = row
        table.rows.append("")
    return "\n".join([*table.header(), *table.rows, *footer(collected, args)]), summary


def footer(collected: dict[str, dict[str, dict[str, list[Result]]]], args) -> list[str]:
    lines = []
    for wl_name, ops in collected.items():
        peaks = {c.label: max((r.rss_mb for cell in ops.values() for r in cell.get(c.label, [])), default=None)
                 for c in args.contenders}
        shown = ", ".join(f"{label} {fmt(mb, 0)} MB" for label, mb in peaks.items())
        line = f"{wl_name} registry peak RSS (max over all operations): {shown}"
        if wl_name in RSS_TARGETED:
            ok = all(mb is not None and mb < RSS_TARGET_MB for mb in peaks.values())
            line += f"; target < {RSS_TARGET_MB} MB ({'ok' if ok else 'MISSED'})"
        lines.append(line)
    lines += schema_notes(collected, args.contenders)
    lines += [
        "Wall time of a fresh subprocess each (start-up included), medians; CPU = user+system s of the subprocess.",
        "f1/f2 = registry with REGISTRY_FORMAT=1/2; up/down = body bytes the S3 server received/sent, req = requests",
        "it answered (its own counters), all of the median-time sample.",
        "boto3 (16 threads) re-uploads everything on re-log / 1% / edit rows and downloads again on repeat rows.",
        "Targets (issue 15, W1-W3): cold upload/download <= 0.7 x boto3; repeat download into a new directory",
        "<= 1.5 x cp -r + 0.3 s (REGISTRY_LINK_MODE=copy) and <= 2 x cp -al + 0.3 s (hardlink); peak RSS < 300 MB on W3.",
        "Targets (issue 16): W4 cold upload/download <= 0.1 x boto3, unchanged re-log <= 1 s, repeat download <= 2 s,",
        "peak RSS < 300 MB; W3-edit, each edit: <= 0.25 x boto3's re-upload and bytes uploaded <= 3 % of the file.",
    ]
    if args.scale != 1.0:
        lines.append(f"(scaled run, --scale {args.scale}: the targets are meant for --scale 1)")
    return lines


def schema_notes(collected: dict[str, dict[str, dict[str, list[Result]]]], contenders: list[Contender]) -> list[str]:
    """Which schema each contender's versions were written in: asking for format 2 from a library
    that does not know ``REGISTRY_FORMAT`` yet silently measures format 1, and this says so."""
    lines = []
    for c in contenders:
        seen: set[Any] = {r.stats.get("schema") for ops in collected.values() for cell in ops.values()
                for r in cell.get(c.label, [])} - {None}
        if seen and seen != {c.format}:
            lines.append(f"NOTE {c.label}: REGISTRY_FORMAT={c.format} was asked for, but the versions were written in "
                         f"schema {', '.join(map(str, sorted(seen)))}: these figures are not format {c.format}'s")
    return lines


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


def contenders(args) -> list[Contender]:
    """A registry per format asked for (and its B copy, for an A/B run)."""
    out = []
    for number in args.formats:
        env = {"REGISTRY_FORMAT": str(number)}
        out.append(Contender(f"f{number}", number, args.registry_src, env))
        if args.registry_src_b or args.link_mode_b:
            env_b = env | ({"REGISTRY_LINK_MODE": args.link_mode_b} if args.link_mode_b else {})
            out.append(Contender(f"f{number} B", number, args.registry_src_b or args.registry_src, env_b))
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default=None,
                        help=f"comma-separated subset of {','.join(ALL_WORKLOADS)} (default: all; none with --scale-run)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="shrink data (W1, W4: file count; W2, W3, W3-edit: file size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--format", type=int, choices=[1, 2], default=2,
                        help="the store format registry workers write (REGISTRY_FORMAT)")
    parser.add_argument("--formats", default=None, help="several formats side by side, e.g. 1,2 (overrides --format)")
    parser.add_argument("--scale-run", action="store_true",
                        help="also run the scale run: 1,000,000 x 100 B files, log/show/pull a 1 %% prefix/re-log")
    parser.add_argument("--scale-run-files", type=int, default=transfer_scale.SCALE_FILES,
                        help="files in the scale run (a multiple of 1000; e.g. 100000 to try it out)")
    parser.add_argument("--scale-run-tree", type=Path, default=None,
                        help="keep the scale run's files here and reuse them in later runs (generating 1M files takes a while)")
    parser.add_argument("--tmp", default=None, help="parent directory for data, caches and the server (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (and the server data)")
    parser.add_argument("--verify", action="store_true", help="compare downloaded bytes, not only names and sizes")
    parser.add_argument("--registry-src", default=None, help="directory put first on PYTHONPATH for registry workers (a patched copy)")
    parser.add_argument("--registry-src-b", default=None,
                        help="a second library copy, run interleaved with the first as 'fN B' (A/B a fix on a busy machine)")
    parser.add_argument("--link-mode-b", default=None, choices=["auto", "reflink", "hardlink", "copy"],
                        help="run 'fN B' (same library unless --registry-src-b) with this REGISTRY_LINK_MODE")
    parser.add_argument("--py-spy", type=Path, default=None, help="record registry workers with py-spy into this directory (timings void)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "transfer.json")
    args = parser.parse_args()
    args.reg_bucket, args.boto_bucket = "registry-bench", "boto3-bench"
    try:
        args.formats = [int(f) for f in args.formats.split(",")] if args.formats else [args.format]
    except ValueError:
        parser.error(f"--formats {args.formats!r}: use a comma-separated list of 1 and 2")
    if not args.formats or any(f not in (1, 2) for f in args.formats) or len(set(args.formats)) != len(args.formats):
        parser.error(f"--formats {args.formats}: use 1, 2 or 1,2")
    if args.scale_run_files < 1000 or args.scale_run_files % 1000:
        parser.error("--scale-run-files: a multiple of 1000 (the files are spread over 1,000 directories)")
    by_upper = {w.upper(): w for w in ALL_WORKLOADS}
    given = args.workloads if args.workloads is not None else ("" if args.scale_run else ",".join(ALL_WORKLOADS))
    asked = [w.strip().upper() for w in given.split(",") if w.strip()]
    unknown = [w for w in asked if w not in by_upper]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}: choose from {', '.join(ALL_WORKLOADS)}")
    args.chosen = [by_upper[w] for w in asked]
    args.contenders = contenders(args)
    return args


def main() -> int:
    args = parse_args()
    wls = workloads(args.scale)
    base = Path(tempfile.mkdtemp(prefix="registry-bench-", dir=args.tmp))
    server = SeaweedServer(base / "weed", metrics=True)
    print(f"temp dir {base}; starting SeaweedFS...", flush=True)
    t0 = time.perf_counter()
    server.start()
    print(f"SeaweedFS up at {server.endpoint_url} in {time.perf_counter() - t0:.1f} s", flush=True)
    collected: dict[str, dict[str, dict[str, list[Result]]]] = {}
    loads: list[tuple[str, int, float, float]] = []
    scale_table, scale_summary = "", dict[str, Any]()
    try:
        server.make_bucket(args.reg_bucket)
        server.make_bucket(args.boto_bucket)
        warm_up(server, [args.reg_bucket, args.boto_bucket])
        runner = Runner(server.env(), base, args.py_spy, TrafficCounter(server.metrics_url),
                        server.proc.pid if server.proc else None)
        warm_bytecode([args.registry_src, args.registry_src_b])
        for wl_name in args.chosen:
            wl = wls[wl_name]
            t0 = time.perf_counter()
            generate(wl, base / "data" / wl.name)
            print(f"{wl.describe()} (generated in {time.perf_counter() - t0:.1f} s)", flush=True)
            collected[wl_name] = {}
            for rep in range(args.repeats):
                load_before = os.getloadavg()[0]
                one = run_edit_repeat if wl_name == "W3-edit" else run_repeat
                results = one(wl, rep, base, runner, args)
                loads.append((wl_name, rep, load_before, os.getloadavg()[0]))
                print(f"    (load average {load_before:.1f} -> {loads[-1][3]:.1f} on {os.cpu_count()} CPUs)", flush=True)
                for op, by_who in results.items():
                    for who, r in by_who.items():
                        collected[wl_name].setdefault(op, {}).setdefault(who, []).append(r)
            shutil.rmtree(base / "data" / wl.name, ignore_errors=True)
        if args.scale_run:
            scale_table, scale_summary = transfer_scale.run(runner, args, base)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    table, summary = report(collected, wls, args) if collected else ("", {})
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print()
    print(f"$ {command}")
    if collected:
        print(f"scale {args.scale}, repeats {args.repeats}, formats {args.formats}; "
              + "; ".join(wls[w].describe() for w in args.chosen))
        print(table)
    if scale_table:
        print()
        print(scale_table)
    import boto3
    import botocore

    doc = {
        "command": command,
        "scale": args.scale,
        "repeats": args.repeats,
        "formats": args.formats,
        "registry_src": args.registry_src,
        "registry_src_b": args.registry_src_b,
        "link_mode_b": args.link_mode_b,
        "profiled": bool(args.py_spy),
        "workloads": {w: wls[w].__dict__ for w in args.chosen},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "boto3": boto3.__version__, "botocore": botocore.__version__},
        "load_average_per_repeat": loads,
        "results": summary,
        "table": table,
        "scale_run": scale_summary,
        "scale_table": scale_table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
