"""The MNIST pipeline example and the deployment script, on the real S3 server."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import registry
from store_fixtures import subprocess_env

EXAMPLES = Path(__file__).parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))


@pytest.mark.parametrize("store_url", ["seaweed"], indirect=True)
def test_pipeline_on_seaweedfs_then_deploy(store_url: str, tmp_path: Path) -> None:
    import mnist_pipeline

    args = ["--subset", "400", "--epochs", "1", "--project", "ex", "--url", store_url]
    first = mnist_pipeline.main(args)
    api = registry.Api(store_url)
    for name in ("mnist-raw", "mnist-preprocess", "convnet", "trained-model"):
        art = api.artifact(f"ex/{name}:latest")
        assert art.version == "v0" and "latest" in art.aliases
    raw = api.artifact("ex/mnist-raw:v0")
    assert raw.metadata["source"].startswith(("sklearn", "torchvision"))  # the data source is recorded
    assert sorted(f.path for f in raw.files()) == ["test.pt", "training.pt", "validation.pt"]
    assert api.artifact("ex/trained-model:best").version == "v0" and first["promoted"]
    graph = api.lineage("ex/trained-model:best", direction="upstream")
    assert {"load-data", "preprocess-data", "initialize", "train"} <= {n.type for n in graph.nodes.values() if n.kind == "run"}
    assert "dataset:mnist-raw:v0" in {n.label for n in graph.nodes.values()}
    report = next(r for r in api.runs("ex") if r.job_type == "report")
    assert isinstance(report.summary["accuracy"], float)

    mnist_pipeline.main(args)  # a second run: the data steps make no new version
    assert [a.version for a in api.artifact_versions("ex/mnist-raw")] == ["v0"]
    assert [a.version for a in api.artifact_versions("ex/mnist-preprocess")] == ["v0"]

    deploy = subprocess.run(
        [sys.executable, str(EXAMPLES / "deploy.py"), "--project", "ex", "--url", store_url, "--dir", str(tmp_path / "model"), "--count", "5"],
        env=subprocess_env(store_url, tmp_path / "deploy-cache"), capture_output=True, text=True, timeout=300,
    )
    assert deploy.returncode == 0, deploy.stderr[-2000:]
    assert (tmp_path / "model" / "trained_model.pth").is_file()
    assert "trained-model" in deploy.stdout

    api.artifact("ex/trained-model:best").link("registry/mnist", aliases=["production"])
    promoted = subprocess.run(
        [sys.executable, str(EXAMPLES / "deploy.py"), "--model", "registry/mnist:production", "--url", store_url,
         "--dir", str(tmp_path / "promoted"), "--count", "5"],
        env=subprocess_env(store_url, tmp_path / "deploy-cache"), capture_output=True, text=True, timeout=300,
    )
    assert promoted.returncode == 0, promoted.stderr[-2000:]
    assert "model registry/mnist:v0" in promoted.stdout
    assert (tmp_path / "promoted" / "trained_model.pth").read_bytes() == (tmp_path / "model" / "trained_model.pth").read_bytes()
