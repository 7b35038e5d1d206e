"""Start-up cost of the CLI (issue 15, item 4): each command a fresh process, against a SeaweedFS
started here. A benchmark, not a test.

    python -c pass                  the interpreter alone: the floor no Python tool goes under
    python -c "import registry"     the package's own import (lazy: names load on first use)
    registry --version              a no-op command
    registry pull ADDR -d DIR       DIR already holds the version (pulled before): stat-only
    registry pull ADDR -d NEW       a new directory, every file linked from the cache
                                    (REGISTRY_LINK_MODE=hardlink), the W2 repeat of transfer.py

The version is W1's shape (2,000 files of 64 KiB, ``--files`` and ``--size`` to change it).
Each row is the median (and min) of ``--repeats`` runs, wall time with start-up, next to the
0.3 s the issue allows; the slowest imports of the in-place pull (``-X importtime``) follow.

    python benchmarks/startup.py
    python benchmarks/startup.py --files 64 --size 16384 --repeats 21
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

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

from servers import SeaweedServer  # noqa: E402
from transfer_runner import Result, Runner, warm_bytecode  # noqa: E402

TARGET = 0.3
LOG = r'''
import sys, registry
with registry.init(project="bench", job_type="bench") as run:
    art = registry.Artifact("startup", type="dataset")
    art.add_dir(sys.argv[1])
    run.log_artifact(art)
'''
CLI = [sys.executable, "-m", "registry.cli"]


def make_files(root: Path, count: int, size: int) -> None:
    for i in range(count):
        folder = root / f"d{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(size))


def slowest_imports(argv: list[str], env: dict[str, str], cwd: Path, top: int = 12) -> list[tuple[float, str]]:
    """The modules with the largest cumulative import time (ms) in one run of ``argv``."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
            if not name.startswith(" "):
                rows.append((int(cumulative) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--registry-src", help="put this copy of the library first on PYTHONPATH")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="registry-startup-"))
    server = SeaweedServer(base / "weed")
    server.start()
    try:
        server.make_bucket("startup")
        env = {**server.env(), "REGISTRY_URL": "s3://startup/bench", "REGISTRY_CACHE_DIR": str(base / "cache"),
               "REGISTRY_LINK_MODE": "hardlink"}
        runner = Runner(env, base, None)
        warm_bytecode([args.registry_src])
        make_files(base / "data", args.files, args.size)
        runner.python(LOG, base / "data", src=args.registry_src, label="log")
        address = "bench/startup:latest"
        in_place = base / "in-place"
        runner.run([*CLI, "-q", "pull", address, "-d", str(in_place)], src=args.registry_src, label="first pull")
        commands: list[tuple[str, list[str] | None]] = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("python -c 'import registry'", [sys.executable, "-c", "import registry"]),
            ("registry --version", [*CLI, "--version"]),
            (f"pull, all {args.files} files in place", [*CLI, "-q", "pull", address, "-d", str(in_place)]),
            (f"pull into a new dir (hardlink)", None),
        ]
        print(f"{args.files} files x {args.size} B; {args.repeats} runs each, a fresh process each; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'command':<36} {'median s':>9} {'min s':>7} {'CPU s':>6}  target {TARGET} s")
        for label, argv in commands:
            results: list[Result] = []
            for i in range(args.repeats):
                if argv is None:
                    fresh = base / f"new-{i}"
                    results.append(runner.run([*CLI, "-q", "pull", address, "-d", str(fresh)], src=args.registry_src,
                                              label=label))
                    shutil.rmtree(fresh)
                else:
                    results.append(runner.run(argv, src=args.registry_src, label=label))
            wall = statistics.median(r.wall for r in results)
            cpu = statistics.median(r.cpu for r in results)
            verdict = "ok" if wall <= TARGET else "MISSED"
            target = "" if label.startswith("python") else verdict
            print(f"{label:<36} {wall:9.3f} {min(r.wall for r in results):7.3f} {cpu:6.3f}  {target}")
        child_env = {**os.environ, **env}
        child_env.pop("PYTHONDONTWRITEBYTECODE", None)
        if args.registry_src:
            child_env["PYTHONPATH"] = args.registry_src + os.pathsep + child_env.get("PYTHONPATH", "")
        print("\nslowest imports of the in-place pull (cumulative ms, one run, -X importtime):")
        for ms, name in slowest_imports([*CLI, "-q", "pull", address, "-d", str(in_place)], child_env, base):
            print(f"  {ms:7.1f}  {name}")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
