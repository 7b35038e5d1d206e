"""Deploy the model the pipeline promoted: fetch `trained-model:best` and classify a few digits.

This is what a deployment host runs. It needs only read access to the store, `registry` and torch:
no run is started, the model is found by its alias and rebuilt from the artifact's metadata.

    python examples/deploy.py --project mnist-pipeline --count 8
    REGISTRY_URL=s3://registry/ python examples/deploy.py --dir /srv/models/digits
    python examples/deploy.py --model registry/mnist:production     # whatever the registry promoted
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helpers beside this file

import registry  # noqa: E402
from convnet import ConvNet  # noqa: E402
from digits import load_digits_dataset  # noqa: E402


def fetch_model(project: str, url: str | None = None, root: str | None = None, alias: str = "best",
                address: str | None = None):
    """Download ``address`` (default ``<project>/trained-model:<alias>``) and return (model in eval
    mode, artifact)."""
    api = registry.Api(url=url)
    artifact = api.artifact(address or f"{project}/trained-model:{alias}")
    model_dir = artifact.download(root)
    model = ConvNet.from_config(artifact.metadata)
    model.load_state_dict(torch.load(os.path.join(model_dir, "trained_model.pth")))
    model.eval()
    print(f"model {artifact.qualified_name} (aliases {', '.join(artifact.aliases)}) from {api.url}")
    print(f"  files in {os.path.abspath(model_dir)}")
    return model, artifact


def classify(model, images: torch.Tensor) -> torch.Tensor:
    """Predicted digits for uint8 images shaped [N, 28, 28], preprocessed as in the pipeline."""
    x = images.to(torch.float32).unsqueeze(1) / 255
    with torch.no_grad():
        return model(x).argmax(dim=1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="mnist-pipeline")
    parser.add_argument("--url", default=None, help="store URL (default: $REGISTRY_URL, else the embedded store)")
    parser.add_argument("--dir", default=None, help="download directory (default ./artifacts/trained-model:<version>)")
    parser.add_argument("--count", type=int, default=10, help="how many test images to classify")
    parser.add_argument("--alias", default="best")
    parser.add_argument("--model", default=None, metavar="ADDRESS",
                        help="the model's address instead, e.g. registry/mnist:production")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    model, artifact = fetch_model(args.project, args.url, args.dir, args.alias, args.model)
    (_, _, test_set), _ = load_digits_dataset()
    images, labels = (t[:args.count] for t in test_set.tensors)
    predictions = classify(model, images)

    for i, (pred, label) in enumerate(zip(predictions.tolist(), labels.tolist())):
        print(f"  test image {i:>3}: predicted {pred}, label {label}  {'ok' if pred == label else 'WRONG'}")
    correct = int((predictions == labels).sum())
    print(f"{correct}/{len(labels)} correct")
    return {"version": artifact.version, "predictions": predictions.tolist(), "labels": labels.tolist(),
            "correct": correct}


if __name__ == "__main__":
    main()
