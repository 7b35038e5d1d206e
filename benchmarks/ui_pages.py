"""Page render times of the web UI on a local store with 1,000 versions and 500 runs.

    python benchmarks/ui_pages.py                 # temp store, removed afterwards
    python benchmarks/ui_pages.py --store /tmp/s  # keep (and reuse) the store
    python benchmarks/ui_pages.py --wide          # also a project of 1,000 one-version artifacts

The store holds 100 five-step pipelines (load-data, preprocess-data, initialize, train,
report), each step a run logging two artifact versions: 500 runs, 1,000 versions of 50
artifacts (20 versions each). Versions go through the library's commit path
(``commit_version``: digest index, write-if-absent, ``latest`` by compare-and-swap); run
records, used-by entries and history chunks are written directly as ``registry.records``.
Train runs log 300 history rows, report runs 32 images. Times come from Flask's test
client (rendering included, no network) and are printed, never asserted.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROJECT = "bench"
STEPS = [  # job type, (output name, type) x 2, inputs from earlier steps (by output name)
    ("load-data", [("raw", "dataset"), ("labels", "dataset")], []),
    ("preprocess-data", [("prep", "dataset"), ("stats", "dataset")], ["raw", "labels"]),
    ("initialize", [("convnet", "model"), ("init-config", "config")], []),
    ("train", [("trained", "model"), ("checkpoint", "model")], ["prep", "convnet"]),
    ("report", [("report", "report"), ("predictions", "predictions")], ["prep", "trained"]),
]
TRAIN_ROWS = 300
IMAGES = 32


def _png(seed: int) -> bytes:
    from PIL import Image

    img = Image.new("L", (28, 28), 0)
    for i in range(28):
        img.putpixel(((seed * 7 + i) % 28, i), 255)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def fill(url: str, pipelines: int = 100, variants: int = 5) -> dict:
    """Write the benchmark project into the store at ``url``; returns where things are."""
    import registry
    from registry import keys
    from registry.publish import draft_record
    from registry.records import FileEntry, FileList, RunRecord, RunRef, UsedByEntry
    from registry.versions import commit_version

    store = registry.Api(url).store
    backend, blobs = store.backend, store.blobs
    image_shas = [blobs.put_bytes(_png(i)) for i in range(IMAGES)]
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    created = {"versions": 0, "runs": 0}
    sample: dict[str, str] = {}
    lock = threading.Lock()

    def variant(k: int) -> None:  # one thread per variant: its artifacts have a single writer
        for p in range(k, pipelines, variants):
            pipeline(p, k)

    def pipeline(p: int, k: int) -> None:
        outputs: dict[str, object] = {}
        for s, (job, produced, consumed) in enumerate(STEPS):
            run_id = secrets.token_hex(4)
            started = t0 + timedelta(minutes=10 * p + s)
            out_refs = []
            for name, type_ in produced:
                files = []
                for f in range(2):
                    body = f"{name}-{k}:{p}:{f}".encode()
                    files.append(FileEntry(path=f"data/part-{f}.bin" if f else "README.md", sha256=blobs.put_bytes(body), size=len(body)))
                file_list = FileList.build(files)
                digest = blobs.put_bytes(file_list.to_bytes())
                draft = draft_record(PROJECT, f"{name}-{k}", type_, f"{name} produced by pipeline {p}",
                                     {"pipeline": p, "variant": k, "params": {"lr": 0.001 * (p + 1), "layers": [8, 16]}},
                                     RunRef(project=PROJECT, id=run_id))
                draft = draft.model_copy(update={"digest": digest, "size": file_list.size, "file_count": len(files)})
                record = commit_version(backend, draft, []).record
                outputs[name] = record
                out_refs.append(record.ref())
                with lock:
                    created["versions"] += 1
            in_refs = [outputs[n].ref() for n in consumed]
            for ref in in_refs:
                backend.write(keys.used_by(ref.project, ref.name, ref.version, PROJECT, run_id),
                              UsedByEntry(run=RunRef(project=PROJECT, id=run_id), used_at=started).to_bytes())
            rows = []
            if job == "train":
                rows = [{"_step": (i + 1) * 128, "_time": 0.0, "train/loss": 2.3 * math.exp(-i / 60) + 0.05 * math.sin(i),
                         "epoch": i // 100} for i in range(TRAIN_ROWS)]
                rows.append({"_step": TRAIN_ROWS * 128, "_time": 0.0, "validation/accuracy": 80 + p % 17})
            elif job == "report":
                rows = [{"_step": 0, "_time": 0.0, "high-loss-examples": [
                    {"_type": "image", "sha256": sha, "width": 28, "height": 28, "caption": f"{i % 10},{(i + 3) % 10}"}
                    for i, sha in enumerate(image_shas)]}]
            if rows:
                backend.write(keys.history_chunk(PROJECT, run_id, 0), "".join(json.dumps(r) + "\n" for r in rows).encode())
            record = RunRecord(
                project=PROJECT, id=run_id, name=f"{job}-{p}-{run_id[:4]}", job_type=job, state="finished",
                config={"pipeline": p, "variant": k, "batch_size": 128}, summary={"loss": 0.1 + p / 1000} if job == "train" else {},
                started_at=started, ended_at=started + timedelta(seconds=42), inputs=in_refs, outputs=out_refs,
                history_chunks=1 if rows else 0,
            )
            backend.write(keys.run(PROJECT, run_id), record.to_bytes())
            with lock:
                created["runs"] += 1
            if p == pipelines - 1:
                sample[job] = run_id

    with ThreadPoolExecutor(max_workers=variants) as pool:
        list(pool.map(variant, range(variants)))
    sample["trained"] = f"trained-{(pipelines - 1) % variants}"
    return {"created": created, "runs": sample}


def fill_wide(url: str, count: int = 1000) -> None:
    """A project of ``count`` artifacts with one version each (the worst case for the project page)."""
    import registry
    from registry.publish import draft_record
    from registry.records import FileEntry, FileList
    from registry.versions import commit_version

    store = registry.Api(url).store

    def one(i: int) -> None:
        body = f"wide-{i}".encode()
        file_list = FileList.build([FileEntry(path="x.bin", sha256=store.blobs.put_bytes(body), size=len(body))])
        digest = store.blobs.put_bytes(file_list.to_bytes())
        draft = draft_record("wide", f"artifact-{i:04d}", ("dataset", "model", "report", "config")[i % 4], None, {"i": i}, None)
        commit_version(store.backend, draft.model_copy(update={"digest": digest, "size": len(body), "file_count": 1}), [])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(first call, median of the following calls) in milliseconds, and the last result."""
    times, result = [], None
    for _ in range(repeat + 1):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times[0], statistics.median(times[1:]), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store directory (default: a temp dir, removed afterwards)")
    parser.add_argument("--pipelines", type=int, default=100, help="five runs and ten versions each (default 100)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--wide", action="store_true", help="also time a project of 1,000 one-version artifacts")
    args = parser.parse_args(argv)

    temp = None if args.store else tempfile.mkdtemp(prefix="registry-ui-bench-")
    root = Path(args.store or temp)
    os.environ.setdefault("REGISTRY_CACHE_DIR", str(root / "cache"))
    url = str(root / "store")
    Path(url).mkdir(parents=True, exist_ok=True)  # an empty store to fill (Api refuses a missing one)
    try:
        import registry
        from registry.ui import create_app

        api = registry.Api(url)
        if PROJECT not in api.projects():
            start = time.perf_counter()
            info = fill(url, pipelines=args.pipelines)
            print(f"filled {url}: {info['created']['versions']} versions, {info['created']['runs']} runs "
                  f"in {time.perf_counter() - start:.1f}s")
        runs = {r.job_type: r.id for r in sorted(api.runs(PROJECT), key=lambda r: r.created_at)}
        trained = max((c for c in api.artifacts(PROJECT, type="model") if c.name.startswith("trained-")), key=lambda c: c.latest.record.version)
        if args.wide and "wide" not in api.projects():
            start = time.perf_counter()
            fill_wide(url)
            print(f"filled project wide: 1000 artifacts x 1 version in {time.perf_counter() - start:.1f}s")

        client = create_app(url).test_client()
        art = f"/projects/{PROJECT}/artifacts/{trained.name}/v{trained.latest.record.version}"
        pages = [
            ("projects", "/"),
            ("project (page 1)", f"/projects/{PROJECT}"),
            ("project (artifacts p2, runs p5)", f"/projects/{PROJECT}?apage=2&rpage=5"),
            ("project (job_type=train)", f"/projects/{PROJECT}?job_type=train"),
            ("artifact overview", art),
            ("artifact metadata", f"{art}?tab=metadata"),
            ("artifact files", f"{art}?tab=files"),
            ("lineage (types)", f"{art}?tab=lineage"),
            ("lineage (exploded)", f"{art}?tab=lineage&explode=1"),
            ("run: train (300 rows)", f"/projects/{PROJECT}/runs/{runs['train']}"),
            ("run: report (32 images)", f"/projects/{PROJECT}/runs/{runs['report']}"),
            ("file download", f"{art}/files/README.md"),
        ]
        if args.wide:
            pages.append(("project wide (1000 artifacts)", "/projects/wide"))
        n_versions = sum(c.version_count for c in api.artifacts(PROJECT))
        print(f"\nstore {url}: project {PROJECT} with {n_versions} versions, {len(api.runs(PROJECT))} runs "
              f"(first call / median of {args.repeat} more, ms)")
        print(f"{'page':34} {'status':>6} {'first':>8} {'median':>8} {'KB':>7}")
        for label, path in pages:
            first, median, response = timed(lambda path=path: client.get(path), args.repeat)
            print(f"{label:34} {response.status_code:>6} {first:8.1f} {median:8.1f} {len(response.data) / 1000:7.1f}")
            assert response.status_code == 200, f"{path}: {response.status_code}"
        print("\nlibrary calls behind the project and artifact pages (ms)")
        collection = f"{PROJECT}/{trained.name}"
        calls = (("Api.artifacts(project)", lambda: api.artifacts(PROJECT)), ("Api.runs(project)", lambda: api.runs(PROJECT)),
                 ("Api.version_numbers + aliases", lambda: (api.version_numbers(collection), api.aliases(collection))))
        for label, fn in calls:
            first, median, _ = timed(fn, args.repeat)
            print(f"{label:34} {'':>6} {first:8.1f} {median:8.1f}")
        return 0
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
