"""Format 2's manifest at scale: build and read back a manifest of N file entries (default
1,000,000) streamed from a generator, pages kept as files in a temporary directory (as a local
store keeps blobs), so the process holds only what the builder and readers hold. A benchmark,
not a test.

Times are CPU seconds of this process (``time.process_time``), so a busy machine inflates them
less than wall-clock time would. Prints the cost of making the entries alone (validated ``FileEntry``s, as hashing yields them),
then of building the manifest from them, reading every entry back, reading one directory's
entries, and finding one entry; the peak RSS after each step; and page counts.

    python benchmarks/manifest_pages.py                 # 1,000,000 entries
    python benchmarks/manifest_pages.py --entries 200000
"""
from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from registry.manifest_pages import (  # noqa: E402
    build_manifest,
    find_entry,
    iter_entries,
    page_digests,
)
from registry.records import FileEntry  # noqa: E402


def entries(count: int) -> Iterator[FileEntry]:
    """``count`` entries in path order: 1,000 files per directory, two directory levels."""
    for i in range(count):
        yield FileEntry(path=f"data/train/{i // 1000:05d}/img-{i:08d}.png",
                        sha256=hashlib.sha256(i.to_bytes(8, "big")).hexdigest(), size=1000 + i % 5000)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    count = args.entries
    print(f"{count:,} entries; peak RSS at start {peak_mib():.0f} MiB")

    started = time.process_time()
    for _ in entries(count):
        pass
    making = time.process_time() - started
    print(f"make the FileEntry objects alone: {making:.2f} s ({making / count * 1e6:.1f} us/entry)")

    with tempfile.TemporaryDirectory() as tmp:
        pages = Path(tmp)
        written = [0, 0]

        def put_page(sha: str, body: bytes) -> None:
            (pages / sha).write_bytes(body)
            written[0] += 1
            written[1] += len(body)

        def get_page(sha: str) -> bytes:
            return (pages / sha).read_bytes()

        started = time.process_time()
        root = build_manifest(entries(count), put_page)
        building = time.process_time() - started
        print(f"make + build: {building:.2f} s; the builder's share {building - making:.2f} s "
              f"({(building - making) / count * 1e6:.1f} us/entry); {written[0]} pages, "
              f"{written[1] / 2**20:.0f} MiB; peak RSS {peak_mib():.0f} MiB")

        started = time.process_time()
        seen = sum(1 for _ in iter_entries(get_page, root.digest))
        reading = time.process_time() - started
        assert seen == count
        print(f"iterate all: {reading:.2f} s ({reading / count * 1e6:.1f} us/entry); peak RSS {peak_mib():.0f} MiB")

        middle = f"data/train/{count // 2000:05d}/"
        started = time.process_time()
        some = sum(1 for _ in iter_entries(get_page, root.digest, middle))
        print(f"iterate prefix {middle!r}: {some} entries in {time.process_time() - started:.3f} s")

        target = f"data/train/{count // 3000:05d}/img-{count // 3:08d}.png"
        started = time.process_time()
        assert find_entry(get_page, root.digest, target) is not None
        print(f"find one entry: {(time.process_time() - started) * 1000:.1f} ms")

        started = time.process_time()
        listed = sum(1 for _ in page_digests(get_page, root.digest))
        print(f"page_digests: {listed} pages in {(time.process_time() - started) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
