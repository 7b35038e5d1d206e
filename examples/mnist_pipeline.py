"""A versioned ML pipeline: the W&B "Track models and datasets" tutorial, step by step, on `registry`.

Each step is its own run (its ``job_type`` names the step) and talks to the others only through
artifacts, so the store records a lineage graph: run -> artifact -> run -> ...

    load-data        logs  mnist-raw         (dataset: training.pt, validation.pt, test.pt)
    preprocess-data  uses  mnist-raw         logs mnist-preprocess (dataset, steps as metadata)
    initialize       logs  convnet           (model: initialized_model.pth, constructor config)
    train            uses  mnist-preprocess + convnet, logs trained-model (+ validation accuracy)
    report           uses  mnist-preprocess + trained-model, logs test loss/accuracy and the
                     32 hardest test images
    promote          moves alias `best` to the new trained-model if its validation accuracy beats
                     the current `best`

Run it:

    python examples/mnist_pipeline.py --epochs 1          # store: $REGISTRY_URL or the default
    REGISTRY_URL=s3://registry/ python examples/mnist_pipeline.py

Running it twice logs no new `mnist-raw`, `mnist-preprocess` or `convnet` version: the data and
initial weights are deterministic and ``torch.save`` (torch 2.x zip format) writes byte-identical
files for identical tensors (zip entries carry a fixed 1980 timestamp and the serialization id is
derived from the contents), so the registry finds the contents equal to the latest version. We
serialise through a ``BytesIO`` with an explicit pickle protocol so the bytes do not depend on the
file object either, and clone tensors so a slice never drags its parent's whole storage along.
Downloads land in ``./artifacts/<name>:<version>/`` under the current directory.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helpers beside this file

import registry  # noqa: E402  (reads like the tutorial's `import wandb`)
from convnet import DEFAULT_CONFIG, ConvNet  # noqa: E402
from digits import SPLITS, load_digits_dataset  # noqa: E402

SEED = 0
PREPROCESS_STEPS = {"normalize": True, "expand_dims": True}
# The tutorial trains with batches of 128 for 5 epochs on 50,000 images; the fallback digits set has
# 1,283 training images, so smaller batches give the one default epoch enough optimizer steps.
TRAIN_CONFIG = {"batch_size": 32, "epochs": 1, "batch_log_interval": 5, "optimizer": "Adam"}


# -- helpers ---------------------------------------------------------------------------------------
def save_torch(obj, file) -> None:
    """``torch.save`` with reproducible bytes: same tensors -> same file -> no new artifact version."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, pickle_protocol=2)
    file.write(buffer.getvalue())


def read_split(data_dir: str, split: str) -> TensorDataset:
    """Read one split (``training``, ``validation`` or ``test``) from a downloaded dataset artifact."""
    x, y = torch.load(os.path.join(data_dir, split + ".pt"))
    return TensorDataset(x, y)


def load_model(model_artifact, filename: str) -> ConvNet:
    """Rebuild a ConvNet from a model artifact: its metadata is the constructor config."""
    model = ConvNet.from_config(model_artifact.metadata)
    model.load_state_dict(torch.load(os.path.join(model_artifact.download(), filename)))
    return model


# -- 1. load-data ----------------------------------------------------------------------------------
def load_and_log(project: str, url: str | None = None, subset: int | None = None):
    """Log the raw train/validation/test splits as the dataset artifact `mnist-raw`."""
    with registry.init(project=project, job_type="load-data", url=url) as run:
        datasets, source = load_digits_dataset(subset=subset)
        raw_data = registry.Artifact(
            "mnist-raw", type="dataset",
            description="Raw handwritten digits, split into training/validation/test",
            metadata={"source": source, "sizes": [len(dataset) for dataset in datasets]})
        for split, dataset in zip(SPLITS, datasets):
            with raw_data.new_file(split + ".pt", mode="wb") as file:  # one file per split
                save_torch(dataset.tensors, file)
        return run.log_artifact(raw_data)


# -- 2. preprocess-data ----------------------------------------------------------------------------
def preprocess(dataset: TensorDataset, normalize: bool = True, expand_dims: bool = True) -> TensorDataset:
    """Scale pixels to [0, 1] and add the channel dimension: [N, 28, 28] -> [N, 1, 28, 28]."""
    x, y = dataset.tensors
    if normalize:
        x = x.to(torch.float32) / 255
    if expand_dims:
        x = torch.unsqueeze(x, 1)
    return TensorDataset(x, y)


def preprocess_and_log(project: str, steps: dict, url: str | None = None):
    """Use `mnist-raw:latest`, log `mnist-preprocess` with the preprocessing steps as metadata."""
    with registry.init(project=project, job_type="preprocess-data", url=url) as run:
        raw_dir = run.use_artifact("mnist-raw:latest").download()  # cached files are not fetched again
        processed = registry.Artifact(
            "mnist-preprocess", type="dataset",
            description="Digits scaled to [0, 1] with a channel dimension",
            metadata=steps)
        for split in SPLITS:
            dataset = preprocess(read_split(raw_dir, split), **steps)
            with processed.new_file(split + ".pt", mode="wb") as file:
                save_torch(dataset.tensors, file)
        return run.log_artifact(processed)


# -- 3. initialize ---------------------------------------------------------------------------------
def build_model_and_log(project: str, model_config: dict, url: str | None = None):
    """Log the untrained network as `convnet`; its metadata is enough to rebuild it."""
    with registry.init(project=project, job_type="initialize", config=model_config, url=url) as run:
        torch.manual_seed(SEED)  # same initial weights every time
        model = ConvNet(**model_config)
        model_artifact = registry.Artifact(
            "convnet", type="model",
            description="Small two-block CNN (conv-ReLU-maxpool x2, dropout, linear)",
            metadata=dict(model_config))
        with model_artifact.new_file("initialized_model.pth", mode="wb") as file:
            save_torch(model.state_dict(), file)
        return run.log_artifact(model_artifact)


# -- 4. train --------------------------------------------------------------------------------------
def test(model, loader):
    """Mean cross-entropy and accuracy (in %) over a loader, as tensors."""
    model.eval()
    loss, correct = torch.tensor(0.0), torch.tensor(0)
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            loss += F.cross_entropy(output, target, reduction="sum")
            correct += (output.argmax(dim=1) == target).sum()
    return loss / len(loader.dataset), 100.0 * correct / len(loader.dataset)


def train(model, train_loader, valid_loader, config):
    """Train; log `train/loss` every few batches and validation metrics after each epoch,
    all against the number of examples seen. Returns the last validation (loss, accuracy)."""
    optimizer = getattr(torch.optim, config.optimizer)(model.parameters())
    example_ct = 0
    for epoch in range(config.epochs):
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            optimizer.step()
            example_ct += len(data)
            if batch_idx % config.batch_log_interval == 0:
                registry.log({"epoch": epoch, "train/loss": loss.item()}, step=example_ct)
                print(f"  epoch {epoch} examples {example_ct:>6}: train loss {loss.item():.3f}")
        val_loss, val_accuracy = test(model, valid_loader)
        registry.log({"epoch": epoch, "validation/loss": float(val_loss),
                      "validation/accuracy": float(val_accuracy)}, step=example_ct)
        print(f"  epoch {epoch}: validation loss {float(val_loss):.3f}, accuracy {float(val_accuracy):.2f}%")
    return float(val_loss), float(val_accuracy)


def train_and_log(project: str, train_config: dict, url: str | None = None):
    """Train `convnet:latest` on `mnist-preprocess:latest`; log the weights as `trained-model`."""
    with registry.init(project=project, job_type="train", config=train_config, url=url) as run:
        config = registry.config
        data_dir = run.use_artifact("mnist-preprocess:latest").download()
        train_loader = DataLoader(read_split(data_dir, "training"), batch_size=config.batch_size)
        valid_loader = DataLoader(read_split(data_dir, "validation"), batch_size=config.batch_size)

        initial = run.use_artifact("convnet:latest")
        model_config = initial.metadata
        config.update(model_config)  # the model's config becomes part of the run's config
        model = load_model(initial, "initialized_model.pth")

        torch.manual_seed(SEED)  # dropout draws: same data + same weights -> same trained model
        val_loss, val_accuracy = train(model, train_loader, valid_loader, config)

        trained = registry.Artifact(
            "trained-model", type="model", description="Trained ConvNet",
            metadata={**model_config, "val_loss": val_loss, "val_accuracy": val_accuracy})
        with tempfile.TemporaryDirectory() as workdir:
            path = os.path.join(workdir, "trained_model.pth")
            with open(path, "wb") as file:
                save_torch(model.state_dict(), file)
            trained.add_file(path)  # add_file: write the file first, add it afterwards
            registry.save(path)  # also keep a copy with the run itself
            return run.log_artifact(trained)


# -- 5. report -------------------------------------------------------------------------------------
def hardest_examples(model, dataset: TensorDataset, k: int = 32):
    """The k test examples with the highest loss: (losses, images, labels, predictions)."""
    model.eval()
    x, y = dataset.tensors
    with torch.no_grad():
        output = model(x)
    losses = F.cross_entropy(output, y, reduction="none")
    worst = torch.argsort(losses, descending=True)[:k]
    return losses[worst], x[worst], y[worst], output.argmax(dim=1)[worst]


def evaluate_and_log(project: str, url: str | None = None):
    """Test `trained-model:latest`; summary gets loss/accuracy, history the hardest examples."""
    with registry.init(project=project, job_type="report", url=url) as run:
        testing_set = read_split(run.use_artifact("mnist-preprocess:latest").download(), "test")
        model = load_model(run.use_artifact("trained-model:latest"), "trained_model.pth")

        loss, accuracy = test(model, DataLoader(testing_set, batch_size=128))
        run.summary.update({"loss": loss, "accuracy": accuracy})  # tensors are fine here

        _, images, labels, predictions = hardest_examples(model, testing_set)
        registry.log({"high-loss-examples": [
            registry.Image(image, caption=f"{int(pred)},{int(label)}")
            for image, pred, label in zip(images, predictions, labels)]})
        print(f"  test loss {float(loss):.3f}, accuracy {float(accuracy):.2f}% ({len(testing_set)} examples)")
        return float(loss), float(accuracy)


# -- 6. promote ------------------------------------------------------------------------------------
def promote_if_better(api, model, metric: str = "val_accuracy") -> tuple[str, bool]:
    """Point alias `best` at ``model`` if its ``metric`` beats the current `best` (or none exists).
    Returns (version now called best, whether the alias moved)."""
    address = f"{model.project}/{model.name}"
    try:
        best = api.artifact(f"{address}:best")
    except registry.NotFoundError:
        best = None
    if best is not None and (best.version == model.version or best.metadata.get(metric, float("-inf")) >= model.metadata[metric]):
        print(f"  {address}:best stays {best.version} ({metric} {best.metadata.get(metric, float('nan')):.2f}; "
              f"{model.version} has {model.metadata[metric]:.2f})")
        return best.version, False
    api.set_alias(f"{address}:{model.version}", "best")
    was = f"was {best.version}" if best is not None else "first best"
    print(f"  {address}:best -> {model.version} ({metric} {model.metadata[metric]:.2f}; {was})")
    return model.version, True


# -- the whole pipeline ----------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    parser.add_argument("--subset", type=int, default=3000,
                        help="total examples over train/validation/test (default 3000; 0 = all)")
    parser.add_argument("--batch-size", type=int, default=TRAIN_CONFIG["batch_size"],
                        help="training batch size (default 32; the tutorial uses 128 on full MNIST)")
    parser.add_argument("--log-interval", type=int, default=TRAIN_CONFIG["batch_log_interval"],
                        help="log train/loss every N batches")
    parser.add_argument("--project", default="mnist-pipeline")
    parser.add_argument("--url", default=None,
                        help="store URL (default: $REGISTRY_URL, else the embedded local store)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Run every step; returns the versions logged, the accuracies and where things are."""
    args = parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    started = time.perf_counter()
    train_config = {**TRAIN_CONFIG, "epochs": args.epochs, "batch_size": args.batch_size,
                    "batch_log_interval": args.log_interval}

    logged = {}

    def step(title, fn, *fn_args, **fn_kwargs):
        print(f"\n== {title}")
        result = fn(*fn_args, **fn_kwargs)
        if isinstance(result, registry.Artifact):
            logged[result.name] = result
            note = "new version" if result.created else "unchanged, no new version"
            print(f"  -> {result.qualified_name} ({note})")
        return result

    step("load-data", load_and_log, args.project, url=args.url, subset=args.subset or None)
    step("preprocess-data", preprocess_and_log, args.project, PREPROCESS_STEPS, url=args.url)
    step("initialize", build_model_and_log, args.project, DEFAULT_CONFIG, url=args.url)
    trained = step("train", train_and_log, args.project, train_config, url=args.url)
    loss, accuracy = step("report", evaluate_and_log, args.project, url=args.url)

    print("\n== promote")
    api = registry.Api(url=args.url)
    best, promoted = promote_if_better(api, trained)

    lineage = api.lineage(f"{args.project}/trained-model:best")
    print(f"\n== lineage of {args.project}/trained-model:best (by type, as the Graph View)")
    print(lineage.to_text())
    print("\n== the same, exploded into single runs and versions")
    print(lineage.to_text(explode=True))

    print("\n== where things are")
    print(f"  store:     {api.url}")
    print(f"  downloads: {os.path.abspath('artifacts')}  (./artifacts/<name>:<version>/)")
    print(f"  deploy:    python examples/deploy.py --project {args.project}"
          + (f" --url {args.url}" if args.url else ""))
    print(f"  total time {time.perf_counter() - started:.1f}s")

    return {
        "project": args.project,
        "url": api.url,
        "versions": {name: artifact.version for name, artifact in logged.items()},
        "created": {name: artifact.created for name, artifact in logged.items()},
        "val_accuracy": trained.metadata["val_accuracy"],
        "loss": loss,
        "accuracy": accuracy,
        "best": best,
        "promoted": promoted,
    }


if __name__ == "__main__":
    main()
