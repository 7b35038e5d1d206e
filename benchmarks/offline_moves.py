"""Time ``registry sync`` and ``registry copy`` on the tutorial's project and a 2,000-file artifact.

Starts its own SeaweedFS on loopback (ports from REGISTRY_TEST_PORTS), logs each workload
offline (REGISTRY_MODE=offline), then times, as fresh processes (start-up included):
``registry sync``; ``registry copy`` bucket A -> bucket B and bucket A -> a local directory;
and the same copy again (incremental: nothing to send).

    python benchmarks/offline_moves.py [--files 2000] [--file-size 65536]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from servers import SeaweedServer  # noqa: E402

REGISTRY = [sys.executable, "-m", "registry.cli"]


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return elapsed


def log_tutorial_offline(env: dict[str, str], cwd: Path) -> None:
    code = "import test_tutorial; test_tutorial.run_tutorial()"
    subprocess.run([sys.executable, "-c", code], env={**env, "REGISTRY_MODE": "offline"}, cwd=cwd, check=True,
                   capture_output=True)


def log_many_files_offline(env: dict[str, str], cwd: Path, files: int, size: int) -> None:
    folder = cwd / "many"
    folder.mkdir()
    for i in range(files):
        (folder / f"{i:05d}.bin").write_bytes(os.urandom(size))
    subprocess.run([*REGISTRY, "--offline", "push", str(folder), "big/many-files", "--type", "dataset"],
                   env=env, cwd=cwd, check=True, capture_output=True)


def measure(name: str, project: str, log, env: dict[str, str], work: Path) -> list[tuple[str, float]]:
    cwd = work / name
    cwd.mkdir()
    log(env, cwd)
    rows = [("sync (offline outbox -> bucket A)", timed([*REGISTRY, "sync"], env, cwd))]
    for label, dst in (("copy bucket A -> bucket B", "s3://bench-b/ml"),
                       ("copy bucket A -> local directory", str(work / f"{name}-local"))):
        rows.append((label, timed([*REGISTRY, "copy", "s3://bench-a/ml", dst, "--project", project], env, cwd)))
        rows.append((f"{label}, again (nothing new)",
                     timed([*REGISTRY, "copy", "s3://bench-a/ml", dst, "--project", project], env, cwd)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--file-size", type=int, default=64 * 1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as temp, SeaweedServer(Path(temp) / "weed") as weed:
        weed.make_bucket("bench-a")
        weed.make_bucket("bench-b")
        work = Path(temp)
        env = {**os.environ, **weed.env(), "REGISTRY_URL": "s3://bench-a/ml",
               "REGISTRY_CACHE_DIR": str(work / "cache"),
               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
        env.pop("REGISTRY_MODE", None)
        results = {
            "tutorial project (artifacts-example)": measure("tutorial", "artifacts-example",
                                                            log_tutorial_offline, env, work),
            f"{args.files} x {args.file_size // 1024} KiB artifact": measure(
                "many", "big", lambda e, c: log_many_files_offline(e, c, args.files, args.file_size), env, work),
        }
    for workload, rows in results.items():
        print(f"\n{workload}")
        for label, seconds in rows:
            print(f"  {label:<48} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
