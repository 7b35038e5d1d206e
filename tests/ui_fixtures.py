"""A store filled like the tutorial pipeline, cheaply (tiny files, no training), for the UI tests.

    load-data        logs  mnist-raw         (dataset)
    preprocess-data  uses  mnist-raw         logs mnist-preprocess (dataset)
    initialize       logs  convnet           (model)
    train            uses  mnist-preprocess + convnet, logs trained-model (model), saves a file
    report           uses  mnist-preprocess + trained-model, logs 32 images "high-loss-examples"

``add_hostile`` adds a project whose user-supplied text (metadata, description, captions,
run names, notes, metric keys, file names) is HTML, to check the UI escapes it.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import registry

PROJECT = "mnist-pipeline"
JOB_TYPES = ("load-data", "preprocess-data", "initialize", "train", "report")
ARTIFACT_TYPES = ("dataset", "model")
ARTIFACT_NAMES = ("mnist-raw", "mnist-preprocess", "convnet", "trained-model")
IMAGE_COUNT = 32
TRAIN_STEPS = 40
HTML = "<script>alert('x')</script><img src=x onerror=alert(1)>"
"""A hostile string; the UI must show it as text, never as markup."""


@dataclass
class Tutorial:
    url: str
    project: str
    runs: dict[str, registry.Run] = field(default_factory=dict)
    """job type -> run."""
    artifacts: dict[str, registry.Artifact] = field(default_factory=dict)
    """artifact name -> the version logged."""

    def run_name(self, job_type: str) -> str:
        return self.runs[job_type].name

    def run_id(self, job_type: str) -> str:
        return self.runs[job_type].id


def _digits(seed: int, count: int) -> np.ndarray:
    """Small fake "digit" images: a bright blob on black, different for each seed."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(count):
        cy, cx, r = rng.integers(8, 20), rng.integers(8, 20), rng.integers(4, 9)
        images[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 255
        images[i] = np.maximum(images[i], rng.integers(0, 60, (28, 28)).astype(np.uint8))
    return images


def fill_tutorial_store(url: str, project: str = PROJECT, workdir: Path | None = None) -> Tutorial:
    """Run the five tutorial steps against the store at ``url`` with tiny artifacts."""
    out = Tutorial(url=url, project=project)

    with registry.init(project=project, job_type="load-data", url=url) as run:
        raw = registry.Artifact("mnist-raw", type="dataset", description="Raw handwritten digits, split into training/validation/test",
                                metadata={"source": "synthetic-digits", "sizes": [60, 20, 20]})
        for split, n in (("training", 60), ("validation", 20), ("test", 20)):
            with raw.new_file(f"{split}.pt", mode="wb") as f:
                f.write(_digits(len(split), n).tobytes())
        with raw.new_file("README.md") as f:
            f.write("# tiny digits\n")
        with raw.new_file("samples/zero/example-0.txt") as f:
            f.write("0\n")
        with raw.new_file("samples/one/example-1.txt") as f:
            f.write("1\n")
        out.artifacts["mnist-raw"] = run.log_artifact(raw)
        out.runs["load-data"] = run

    with registry.init(project=project, job_type="preprocess-data", url=url) as run:
        run.use_artifact("mnist-raw:latest")
        prep = registry.Artifact("mnist-preprocess", type="dataset", description="Digits scaled to [0, 1] with a channel dimension",
                                 metadata={"normalize": True, "expand_dims": True})
        for split in ("training", "validation", "test"):
            with prep.new_file(f"{split}.pt", mode="wb") as f:
                f.write(b"prep-" + split.encode())
        out.artifacts["mnist-preprocess"] = run.log_artifact(prep)
        out.runs["preprocess-data"] = run

    model_config = {"conv_channels": [8, 16], "dropout": 0.25, "num_classes": 10}
    with registry.init(project=project, job_type="initialize", config=model_config, url=url) as run:
        net = registry.Artifact("convnet", type="model", description="Small two-block CNN", metadata=dict(model_config))
        with net.new_file("initialized_model.pth", mode="wb") as f:
            f.write(b"initial-weights")
        out.artifacts["convnet"] = run.log_artifact(net)
        out.runs["initialize"] = run

    train_config = {"batch_size": 128, "epochs": 1, "batch_log_interval": 5, "optimizer": "Adam"}
    with registry.init(project=project, job_type="train", config=train_config, url=url) as run:
        run.use_artifact("mnist-preprocess:latest")
        run.use_artifact("convnet:latest")
        for i in range(TRAIN_STEPS):
            registry.log({"epoch": 0, "train/loss": 2.3 * math.exp(-i / 12) + 0.05 * math.sin(i)}, step=(i + 1) * 128)
        registry.log({"epoch": 0, "validation/loss": 0.41, "validation/accuracy": 88.5}, step=TRAIN_STEPS * 128)
        trained = registry.Artifact("trained-model", type="model", description="Trained ConvNet",
                                    metadata={**model_config, "val_loss": 0.41, "val_accuracy": 88.5})
        weights = (workdir or Path.cwd()) / "trained_model.pth"
        weights.write_bytes(b"trained-weights")
        trained.add_file(weights)
        registry.save(str(weights))
        out.artifacts["trained-model"] = run.log_artifact(trained)
        out.runs["train"] = run

    with registry.init(project=project, job_type="report", url=url) as run:
        run.use_artifact("mnist-preprocess:latest")
        run.use_artifact("trained-model:latest")
        run.summary.update({"loss": 0.52, "accuracy": 87.0})
        images = _digits(99, IMAGE_COUNT)
        registry.log({"high-loss-examples": [registry.Image(img, caption=f"{i % 10},{(i + 3) % 10}") for i, img in enumerate(images)]})
        out.runs["report"] = run

    registry.Api(url=url).set_alias(f"{project}/trained-model:v0", "best")
    return out


@dataclass
class Hostile:
    project: str
    run_id: str
    artifact: str
    file_path: str


def add_hostile(url: str, project: str = "hostile", workdir: Path | None = None) -> Hostile:
    """A project whose every free-text field is HTML."""
    with registry.init(project=project, job_type="train", name=f"run-{HTML}", notes=HTML, tags=[HTML],
                       config={HTML: HTML}, url=url) as run:
        art = registry.Artifact("evil", type="dataset", description=HTML, metadata={HTML: HTML, "nested": {"k": HTML}})
        with art.new_file(f"dir/{HTML.replace('/', '_')}.txt") as f:
            f.write("payload")
        run.log_artifact(art)
        registry.log({f"loss{HTML}": 1.0}, step=0)
        registry.log({f"loss{HTML}": 0.5}, step=1)
        registry.log({"pics": [registry.Image(np.zeros((8, 8), dtype=np.uint8), caption=HTML)]})
        return Hostile(project=project, run_id=run.id, artifact="evil", file_path=f"dir/{HTML.replace('/', '_')}.txt")


def fill_sweep(url: str, project: str = "sweep", trainings: int = 12) -> int:
    """One dataset and ``trainings`` train + report runs using it: a graph of ~3.5 nodes per training.

    Returns the number of nodes of ``mnist-preprocess:v0``'s exploded lineage (both directions).
    """
    with registry.init(project=project, job_type="load-data", url=url) as run:
        raw = registry.Artifact("mnist-raw", type="dataset")
        with raw.new_file("training.pt", mode="wb") as f:
            f.write(b"raw")
        run.log_artifact(raw)
    with registry.init(project=project, job_type="preprocess-data", url=url) as run:
        run.use_artifact("mnist-raw:latest")
        prep = registry.Artifact("mnist-preprocess", type="dataset")
        with prep.new_file("training.pt", mode="wb") as f:
            f.write(b"prep")
        run.log_artifact(prep)
    for i in range(trainings):
        with registry.init(project=project, job_type="train", config={"lr": 10 ** -(1 + i % 4)}, url=url) as run:
            run.use_artifact("mnist-preprocess:v0")
            model = registry.Artifact("trained-model", type="model", metadata={"trial": i})
            with model.new_file("model.pth", mode="wb") as f:
                f.write(f"weights-{i}".encode())
            run.log_artifact(model)
        with registry.init(project=project, job_type="report", url=url) as run:
            run.use_artifact("mnist-preprocess:v0")
            run.use_artifact(f"trained-model:v{i}")
            registry.log({"accuracy": 80 + i})
    return 4 + 3 * trainings


@contextmanager
def module_store(base: Path) -> Iterator[tuple[str, Path]]:
    """A fresh local store URL and work directory under ``base``, with its own cache, for a test module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGISTRY_CACHE_DIR", str(base / "cache"))
        mp.delenv("REGISTRY_URL", raising=False)
        work = base / "work"
        work.mkdir()
        mp.chdir(work)
        yield str(base / "store"), work
