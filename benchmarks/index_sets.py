"""What index sets save a machine that has never seen the store (docs/FORMAT.md, "Index sets"):
loading every pack index of a store of N packs, one GET per pack's ``.idx`` vs a few sets
written by gc, on SeaweedFS started by this script. A benchmark, not a test.

The packs are written straight through ``PackUploader`` (200 small chunks each, as a version of
200 small files would make), then ``PackIndexes.load_all`` runs on a cold cache, first before
gc gathered the indexes, then after.

    python benchmarks/index_sets.py                # 2,000 packs
    python benchmarks/index_sets.py --packs 5000 --repeats 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from servers import SeaweedServer  # noqa: E402

from registry.gc_index_sets import compact_indexes  # noqa: E402
from registry.gc_report import GcReport  # noqa: E402
from registry.hashing import sha256_bytes  # noqa: E402
from registry.pack_writer import PackUploader  # noqa: E402
from registry.settings import Settings  # noqa: E402
from registry.store import Store  # noqa: E402

BUCKET = "index-sets"
CHUNKS_PER_PACK = 200


def fill(store: Store, packs: int) -> None:
    with PackUploader(store.backend, in_flight=8) as uploader:
        for _ in range(packs):
            for _ in range(CHUNKS_PER_PACK):
                data = os.urandom(64)
                uploader.add(sha256_bytes(data), data)
            uploader.finish()  # close this pack: one per version of small files


def cold_load(url: str, base: Path, repeats: int) -> float:
    times = []
    for n in range(repeats):
        store = Store(Settings.from_env(url).model_copy(update={"cache_dir": base / f"cold-{time.time_ns()}-{n}"}))
        started = time.perf_counter()
        store.pack_indexes.load_all()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-index-sets-") as tmp, \
            SeaweedServer(Path(tmp) / "weed") as server:
        server.make_bucket(BUCKET)
        os.environ.update(server.env())
        url = f"s3://{BUCKET}/bench"
        store = Store(Settings.from_env(url).model_copy(update={"cache_dir": Path(tmp) / "writer"}))
        fill(store, args.packs)
        before = cold_load(url, Path(tmp), args.repeats)
        report = GcReport()
        compact_indexes(store, report)
        after = cold_load(url, Path(tmp), args.repeats)
    print(f"cold load of {args.packs} pack indexes ({CHUNKS_PER_PACK} chunks each), median of {args.repeats}:")
    print(f"  one .idx per pack:     {before:6.2f} s  ({args.packs} GETs)")
    print(f"  {len(report.index_sets_written):4d} index set(s):     {after:6.2f} s  "
          f"({len(report.index_sets_written)} GETs)   ratio {after / before:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
