"""A small project like the tutorial's, logged into whatever store REGISTRY_URL names."""
from __future__ import annotations

import registry


def log_pipeline(project: str = "proj", tag: str = "") -> None:
    """raw (best) -> train -> model (best) -> eval -> report, with history, an image and a saved file."""
    from PIL import Image as PILImage

    with registry.init(project=project, job_type="load-data") as run:
        raw = registry.Artifact("raw", type="dataset")
        with raw.new_file("data.txt") as f:
            f.write(f"raw data {tag}")
        with raw.new_file("labels.txt") as f:
            f.write("labels that never change")
        run.log_artifact(raw, aliases=["best"])
    with registry.init(project=project, job_type="train") as run:
        run.use_artifact("raw:best")
        run.log({"loss": 0.25, "sample": registry.Image(PILImage.new("RGB", (3, 3), "blue"))})
        model = registry.Artifact("model", type="model")
        with model.new_file("weights.bin", mode="wb") as f:
            f.write(f"weights {tag}".encode())
        run.log_artifact(model, aliases=["best"])
    with registry.init(project=project, job_type="eval") as run:
        run.use_artifact("model:best")
        run.summary["accuracy"] = 0.9


def log_raw(project: str, text: str) -> registry.Artifact:
    with registry.init(project=project, job_type="load-data") as run:
        raw = registry.Artifact("raw", type="dataset")
        with raw.new_file("data.txt") as f:
            f.write(text)
        with raw.new_file("labels.txt") as f:
            f.write("labels that never change")
        return run.log_artifact(raw)
