"""The scale run of ``transfer.py --scale-run`` (issue 16): one artifact of 1,000,000 files of
100 B in 1,000 directories, per format asked for:

=========================  ==========================================================  ===================
step                       what runs (a fresh subprocess each)                         target
=========================  ==========================================================  ===================
log                        ``run.log_artifact`` of the tree, empty hash db and cache   peak RSS < 1 GB
show                       ``registry show bench/scale:latest``, an empty cache        < 1 s, RSS < 1 GB
pull 1 %                   ``registry pull ... --path-prefix p42/`` (10,000 files)     peak RSS < 1 GB
                           into an empty directory, with an empty cache
re-log, 1 file changed     the tree logged again after one file got new bytes          uploads < 1 MB
=========================  ==========================================================  ===================

The tree is ``pNN/sM/fNNNNNNN.bin`` (100 x 10 directories, so one top directory holds 1 % of
the files). It is generated once per run and shared by the formats, or kept across runs with
``--scale-run-tree``: writing a million files takes a while, logging them longer. One pass, no
repeats: each step takes minutes at full size.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from report_table import Table, fmt, traffic_text, worker_text
from transfer_data import write_small_files
from transfer_runner import Result, Runner, short
from transfer_workers import REG_CLI, REG_LOG

SCALE_FILES = 1_000_000
FILE_SIZE = 100
TOPS, SUBS = 100, 10
PULLED = "p42/"
"""The 1 % sub-directory the pull step asks for."""
RSS_LIMIT_MB = 1000
SHOW_LIMIT_S = 1.0
RELOG_UP_LIMIT = 1_000_000
"""Bytes: the one-file re-log must upload under 1 MB."""
STEPS = ["log", "show", "pull 1 % (--path-prefix)", "re-log, 1 file changed"]
TARGETS = ["RSS < 1 GB", "< 1 s, RSS < 1 GB", "RSS < 1 GB", "up < 1 MB, RSS < 1 GB"]


def leaf(count: int, top: int, sub: int) -> tuple[str, list[str]]:
    """One of the tree's 1,000 directories, and its file names."""
    per_leaf = count // (TOPS * SUBS)
    first = (top * SUBS + sub) * per_leaf
    return f"p{top:02d}/s{sub}", [f"f{first + k:07d}.bin" for k in range(per_leaf)]


def make_tree(root: Path, count: int) -> str:
    """Generate the tree under ``root``, or reuse the one a marker beside it says is complete.

    Creating a file costs this machine's ext4 0.3-1 ms of kernel time, nearly all of it the
    inode: one process per CPU, each writing whole top directories, roughly halves the wait."""
    marker = root.parent / "complete.json"
    wanted = {"files": count, "size": FILE_SIZE, "directories": [TOPS, SUBS]}
    if root.is_dir() and marker.is_file() and json.loads(marker.read_text()) == wanted:
        return f"reused from {root}"
    marker.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(_write_top, [root] * TOPS, range(TOPS), [count] * TOPS))
    marker.write_text(json.dumps(wanted))
    return f"generated in {time.perf_counter() - started:.0f} s"


def _write_top(root: Path, top: int, count: int) -> None:
    for sub in range(SUBS):
        folder, names = leaf(count, top, sub)
        write_small_files(root / folder, names, FILE_SIZE)


def change_one(root: Path, count: int, n: int) -> str:
    """Give one file (a different one for each contender ``n``) new bytes; returns its path."""
    folder, names = leaf(count, 7 + n, 3)
    (root / folder / names[0]).write_bytes(os.urandom(FILE_SIZE))
    return f"{folder}/{names[0]}"


def count_files(root: Path) -> tuple[int, set[str]]:
    """How many files are under ``root``, and their top directories."""
    total, tops = 0, set()
    for folder, _, names in os.walk(root):
        if names:
            total += len(names)
            tops.add(Path(folder).relative_to(root).parts[0])
    return total, tops


def run(runner: Runner, args, base: Path) -> tuple[str, dict]:
    """Every step for each contender in turn; returns the report and its JSON summary."""
    count = args.scale_run_files
    tree = args.scale_run_tree or base / "scale-tree"
    root = tree / "files"
    print(f"scale run: {count:,} files x {FILE_SIZE} B in {TOPS * SUBS:,} directories ...", flush=True)
    how = make_tree(root, count)
    print(f"    tree {how}", flush=True)
    results: dict[str, dict[str, Result]] = {step: {} for step in STEPS}
    address = "bench/scale:latest"
    for n, c in enumerate(args.contenders):
        sub = f"scale-{c.label.replace(' ', '-')}-{os.getpid()}"
        work = base / sub
        up = {"REGISTRY_URL": f"s3://{args.reg_bucket}/{sub}", "REGISTRY_PROJECT": "bench",
              "REGISTRY_CACHE_DIR": str(work / "cache-up"), **c.env}

        def measure(step: str, code: str, *argv: object, cache: str = "cache-up", c=c, up=up, work=work) -> None:
            env = {**up, "REGISTRY_CACHE_DIR": str(work / cache)}
            r = runner.python(code, *map(str, argv), env=env, src=c.src, label=f"scale-{c.label}-{step}", profile=True)
            results[step][c.label] = r
            print(f"    scale {step:24s} {c.label:6s} {r.wall:8.2f} s  cpu {r.cpu:7.2f} s {r.rss_mb:6.0f} MB"
                  f"{traffic_text(r)}{worker_text(r)}", flush=True)

        measure(STEPS[0], REG_LOG, root, "scale")
        measure(STEPS[1], REG_CLI, "show", address, cache="cache-show")
        pulled = work / "pulled"
        measure(STEPS[2], REG_CLI, "pull", address, "-d", pulled, "--path-prefix", PULLED, cache="cache-pull")
        got, tops = count_files(pulled)
        if got != count // 100 or tops != {PULLED.rstrip("/")}:
            raise RuntimeError(f"pull --path-prefix {PULLED} placed {got} files in {sorted(tops)}; "
                               f"expected {count // 100} in {PULLED}")
        print(f"    (changed {change_one(root, count, n)})", flush=True)
        measure(STEPS[3], REG_LOG, root, "scale")
        shutil.rmtree(work, ignore_errors=True)
    if args.scale_run_tree is None:
        shutil.rmtree(tree, ignore_errors=True)
    return report(results, args, count, how)


def verdict(step: str, r: Result) -> str:
    ok = r.rss_mb < RSS_LIMIT_MB
    if step == STEPS[1]:
        ok = ok and r.wall < SHOW_LIMIT_S
    if step == STEPS[3]:
        ok = ok and r.up is not None and r.up < RELOG_UP_LIMIT
    return "ok" if ok else "MISSED"


def report(results: dict[str, dict[str, Result]], args, count: int, how: str) -> tuple[str, dict]:
    labels = [c.label for c in args.contenders]
    table = Table([("", [("step", -24), ("target", -21)]),
                   *[(f"registry {label}", [("s", 8), ("RSS MB", 6), ("up", 6), ("down", 6), ("req", 7),
                                             ("verdict", 7)]) for label in labels]])
    summary: dict = {"files": count, "file_size": FILE_SIZE, "directories": TOPS * SUBS, "tree": how, "steps": {}}
    for step, target in zip(STEPS, TARGETS):
        groups = [[step, target]]
        summary["steps"][step] = {"target": target}
        for label in labels:
            r = results[step].get(label)
            if r is None:
                groups.append(["-"] * 6)
                continue
            groups.append([fmt(r.wall), fmt(r.rss_mb, 0), short(r.up), short(r.down),
                           str(r.request_count) if r.traffic else "-", verdict(step, r)])
            summary["steps"][step][label] = {"wall_s": r.wall, "cpu_s": r.cpu, "rss_mb": r.rss_mb, "up_bytes": r.up,
                                             "down_bytes": r.down, "requests_by_type": r.requests,
                                             "verdict": verdict(step, r), "stats": r.stats}
        table.add(groups)
    lines = [f"scale run: {count:,} files x {FILE_SIZE} B in {TOPS * SUBS:,} directories (tree {how}); "
             f"pull of {PULLED} = {count // 100:,} files", *table.header(), *table.rows,
             "One pass each (no repeats); a fresh subprocess each, start-up included. show and pull start with an",
             "empty cache (another machine); up/down/req as counted by the S3 server.",
             "Targets (issue 16): every step completes with peak RSS < 1 GB; show < 1 s; the one-file re-log uploads < 1 MB."]
    for c in args.contenders:
        written = results[STEPS[0]][c.label].stats.get("schema") if c.label in results[STEPS[0]] else None
        if written is not None and written != c.format:
            lines.append(f"NOTE {c.label}: REGISTRY_FORMAT={c.format} was asked for, but the version was written in "
                         f"schema {written}: these figures are not format {c.format}'s")
    return "\n".join(lines), summary
