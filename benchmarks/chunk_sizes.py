"""Pick format 2's chunk sizes (issue 16): what each (min, avg, max) costs and saves. A benchmark,
not a test.

Writes a random file (1 GiB by default) and two edited copies of it to a temp directory:
  overwrite  1 % of its bytes overwritten, at 10 random offsets (10 x ~1 MiB for 1 GiB)
  insert     1 KiB inserted in the middle
then, for each candidate, chunks the three with ``registry.chunking.chunk_file`` (one read,
chunk and whole-file sha256) and prints: throughput (the best of the three files, read from the
page cache: on a shared machine other work only ever slows a run down), chunk count and mean size, the bytes of the edited file's chunks the original
lacks (what a writer would upload) as % of the file, and the index and manifest bytes the chunk
count implies (44 B per pack-index entry, ~80 B of manifest JSON per chunk). Issue 16's
target: at most 3 % uploaded for both edits.

Finally, for the chosen sizes, ``chunk_file`` against one thread doing the same work (read
everything, then hash and chunk), to show what its hashing thread buys on this machine.

    python benchmarks/chunk_sizes.py                 # 1 GiB
    python benchmarks/chunk_sizes.py --size 256M --tmp /somewhere/with/room
    python benchmarks/chunk_sizes.py --threads-only --repeats 5

Throughput needs a quiet machine: other processes on the same cores slow both sides and take
away the core the hashing thread would use.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from registry import chunking  # noqa: E402
from registry.chunking import ChunkSizes, chunk_file  # noqa: E402

KIB, MIB = 1024, 1024 * 1024
CANDIDATES = [
    ChunkSizes(16 * KIB, 64 * KIB, 256 * KIB),
    ChunkSizes(32 * KIB, 128 * KIB, 512 * KIB),
    ChunkSizes(32 * KIB, 256 * KIB, 1 * MIB),
    ChunkSizes(64 * KIB, 256 * KIB, 1 * MIB),
    ChunkSizes(64 * KIB, 256 * KIB, 2 * MIB),
    ChunkSizes(128 * KIB, 512 * KIB, 2 * MIB),
    ChunkSizes(256 * KIB, 1 * MIB, 4 * MIB),
]
WRITE_BLOCK = 64 * MIB
INDEX_ENTRY, MANIFEST_ENTRY = 44, 80


def parse_size(text: str) -> int:
    units = {"K": KIB, "M": MIB, "G": 1024 * MIB}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def write_random(path: Path, size: int, rng: random.Random) -> None:
    with open(path, "wb") as f:
        for start in range(0, size, WRITE_BLOCK):
            f.write(rng.randbytes(min(WRITE_BLOCK, size - start)))


def write_overwritten(src: Path, dst: Path, rng: random.Random) -> int:
    """A copy with 1 % of the bytes replaced, as 10 runs in 10 random places (one per tenth of
    the file, so they never overlap). Returns the bytes changed."""
    size = src.stat().st_size
    run, tenth = size // 1000, size // 10
    data = bytearray(src.read_bytes())
    for i in range(10):
        at = i * tenth + rng.randrange(tenth - run)
        data[at : at + run] = rng.randbytes(run)
    dst.write_bytes(data)
    return 10 * run


def write_inserted(src: Path, dst: Path, rng: random.Random) -> None:
    data = src.read_bytes()
    middle = len(data) // 2
    dst.write_bytes(data[:middle] + rng.randbytes(KIB) + data[middle:])


def new_bytes(base: chunking.ChunkedFile, edited: chunking.ChunkedFile) -> int:
    """Bytes of the distinct chunks of ``edited`` that ``base`` lacks: what a writer uploads."""
    known = {chunk_id for chunk_id, _ in base.chunks}
    return sum(dict(edited.chunks).get(chunk_id, 0) for chunk_id in {c for c, _ in edited.chunks} - known)


def timed_chunks(path: Path, sizes: ChunkSizes) -> tuple[chunking.ChunkedFile, float]:
    start = time.perf_counter()
    result = chunk_file(path, sizes=sizes)
    return result, time.perf_counter() - start


def measure(files: dict[str, Path], sizes: ChunkSizes) -> dict[str, float]:
    size = files["base"].stat().st_size
    results, speeds = {}, []
    for name, path in files.items():
        results[name], seconds = timed_chunks(path, sizes)
        speeds.append(path.stat().st_size / seconds / 1e6)
    count = len(results["base"].chunks)
    return {
        "mbps": max(speeds), "count": count, "mean_kib": size / count / KIB,
        "overwrite_pct": 100 * new_bytes(results["base"], results["overwrite"]) / size,
        "insert_pct": 100 * new_bytes(results["base"], results["insert"]) / size,
        "index_kb": count * INDEX_ENTRY / 1000, "manifest_kb": count * MANIFEST_ENTRY / 1000,
    }


def one_thread(path: Path, sizes: ChunkSizes) -> chunking.ChunkedFile:
    """The same result by one thread: read it all, hash it, cut and hash the chunks."""
    data = path.read_bytes()
    return chunking.chunk_bytes(data, sizes=sizes)


def compare_threads(path: Path, sizes: ChunkSizes, repeats: int = 3) -> None:
    size = path.stat().st_size
    best = {"chunk_file (2 threads)": 0.0, "one thread": 0.0}
    for _ in range(repeats):
        for label, run in (("chunk_file (2 threads)", chunk_file), ("one thread", one_thread)):
            start = time.perf_counter()
            run(path, sizes=sizes)
            best[label] = max(best[label], size / (time.perf_counter() - start) / 1e6)
    for label, speed in best.items():
        print(f"  {label:24s} {speed:7.0f} MB/s (best of {repeats})")
    print(f"  ratio {best['chunk_file (2 threads)'] / best['one thread']:.2f}x;"
          f" sha256 alone on this machine: {sha256_speed():.0f} MB/s")


def sha256_speed() -> float:
    data = random.Random(0).randbytes(64 * MIB)
    start = time.perf_counter()
    for _ in range(4):
        hashlib.sha256(data).digest()
    return 4 * len(data) / (time.perf_counter() - start) / 1e6


def label(sizes: ChunkSizes) -> str:
    def short(n: int) -> str:
        return f"{n // MIB}M" if n % MIB == 0 else f"{n // KIB}K"
    return f"{short(sizes.min)}/{short(sizes.avg)}/{short(sizes.max)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=1024 * MIB, help="file size, e.g. 1G, 256M (default 1G)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--tmp", default=None, help="parent directory for the three files (default: $TMPDIR)")
    parser.add_argument("--threads-only", action="store_true", help="only compare chunk_file with one thread")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side of the thread comparison")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        files = {name: Path(tmp) / f"{name}.bin" for name in ("base", "overwrite", "insert")}
        write_random(files["base"], args.size, rng)
        if args.threads_only:
            compare_threads(files["base"], chunking.SIZES, args.repeats)
            return 0
        changed = write_overwritten(files["base"], files["overwrite"], rng)
        write_inserted(files["base"], files["insert"], rng)
        print(f"file {args.size / MIB:.0f} MiB; overwrite: 10 x {changed // 10 / MIB:.2f} MiB "
              f"({100 * changed / args.size:.1f} %); insert: 1 KiB in the middle; chosen: {label(chunking.SIZES)}")
        print(f"{'min/avg/max':>12} {'MB/s':>6} {'chunks':>7} {'mean KiB':>8} {'overwrite %':>11} "
              f"{'insert %':>8} {'index KB':>8} {'manifest KB':>11}")
        for sizes in CANDIDATES:
            row = measure(files, sizes)
            mark = " <- chosen" if sizes == chunking.SIZES else ""
            print(f"{label(sizes):>12} {row['mbps']:6.0f} {row['count']:7.0f} {row['mean_kib']:8.0f} "
                  f"{row['overwrite_pct']:11.2f} {row['insert_pct']:8.3f} {row['index_kb']:8.0f} "
                  f"{row['manifest_kb']:11.0f}{mark}")
        print(f"threads, at the chosen sizes ({label(chunking.SIZES)}):")
        compare_threads(files["base"], chunking.SIZES, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
