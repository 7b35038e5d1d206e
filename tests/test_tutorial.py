"""The W&B tutorial's pipeline, code cells as written, with ``import registry as wandb``.

The only changes: ``load()`` returns small random tensors (no download here), the model
initialisation step the tutorial names but does not show is written out, and epochs = 1.
"""
from __future__ import annotations

import os
from math import floor

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import registry as wandb

device = torch.device("cpu")
num_classes = 10
input_shape = (1, 28, 28)


def load(train_size=200):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (300,), generator=g)
    x_train, x_val, x_test = x[:train_size], x[train_size:250], x[250:]
    y_train, y_val, y_test = y[:train_size], y[train_size:250], y[250:]
    return [TensorDataset(x_train, y_train), TensorDataset(x_val, y_val), TensorDataset(x_test, y_test)]


def load_and_log():
    with wandb.init(project="artifacts-example", job_type="load-data") as run:
        datasets = load()
        names = ["training", "validation", "test"]
        raw_data = wandb.Artifact(
            "mnist-raw", type="dataset",
            description="Raw MNIST dataset, split into train/val/test",
            metadata={"source": "torchvision.datasets.MNIST",
                      "sizes": [len(dataset) for dataset in datasets]})
        for name, data in zip(names, datasets):
            with raw_data.new_file(name + ".pt", mode="wb") as file:
                x, y = data.tensors
                torch.save((x, y), file)
        run.log_artifact(raw_data)


def preprocess(dataset, normalize=True, expand_dims=True):
    x, y = dataset.tensors
    if normalize:
        x = x.type(torch.float32) / 255
    if expand_dims:
        x = torch.unsqueeze(x, 1)
    return TensorDataset(x, y)


def preprocess_and_log(steps):
    with wandb.init(project="artifacts-example", job_type="preprocess-data") as run:
        processed_data = wandb.Artifact(
            "mnist-preprocess", type="dataset",
            description="Preprocessed MNIST dataset",
            metadata=steps)
        raw_data_artifact = run.use_artifact('mnist-raw:latest')
        raw_dataset = raw_data_artifact.download()
        for split in ["training", "validation", "test"]:
            raw_split = read(raw_dataset, split)
            processed_dataset = preprocess(raw_split, **steps)
            with processed_data.new_file(split + ".pt", mode="wb") as file:
                x, y = processed_dataset.tensors
                torch.save((x, y), file)
        run.log_artifact(processed_data)


def read(data_dir, split):
    filename = split + ".pt"
    x, y = torch.load(os.path.join(data_dir, filename))
    return TensorDataset(x, y)


class ConvNet(nn.Module):
    def __init__(self, hidden_layer_sizes=[32, 64], kernel_sizes=[3], activation="ReLU", pool_sizes=[2],
                 dropout=0.5, num_classes=num_classes, input_shape=input_shape):
        super(ConvNet, self).__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(in_channels=input_shape[0], out_channels=hidden_layer_sizes[0], kernel_size=kernel_sizes[0]),
            getattr(nn, activation)(), nn.MaxPool2d(kernel_size=pool_sizes[0]))
        self.layer2 = nn.Sequential(
            nn.Conv2d(in_channels=hidden_layer_sizes[0], out_channels=hidden_layer_sizes[-1], kernel_size=kernel_sizes[-1]),
            getattr(nn, activation)(), nn.MaxPool2d(kernel_size=pool_sizes[-1]))
        self.layer3 = nn.Sequential(nn.Flatten(), nn.Dropout(dropout))
        fc_input_dims = floor((input_shape[1] - kernel_sizes[0] + 1) / pool_sizes[0])
        fc_input_dims = floor((fc_input_dims - kernel_sizes[-1] + 1) / pool_sizes[-1])
        fc_input_dims = fc_input_dims * fc_input_dims * hidden_layer_sizes[-1]
        self.fc = nn.Linear(fc_input_dims, num_classes)

    def forward(self, x):
        return self.fc(self.layer3(self.layer2(self.layer1(x))))


def build_model_and_log(config):
    """The tutorial's unshown cell: log the untrained ConvNet with its config as metadata."""
    with wandb.init(project="artifacts-example", job_type="initialize", config=config) as run:
        config = wandb.config
        model = ConvNet(**config)
        model_artifact = wandb.Artifact(
            "convnet", type="model",
            description="Simple AlexNet style CNN",
            metadata=dict(config))
        torch.save(model.state_dict(), "initialized_model.pth")
        model_artifact.add_file("initialized_model.pth")
        wandb.save("initialized_model.pth")
        run.log_artifact(model_artifact)


def train(model, train_loader, valid_loader, config):
    optimizer = getattr(torch.optim, config.optimizer)(model.parameters())
    model.train()
    example_ct = 0
    for epoch in range(config.epochs):
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = F.cross_entropy(output, target)
            loss.backward()
            optimizer.step()
            example_ct += len(data)
            if batch_idx % config.batch_log_interval == 0:
                train_log(loss, example_ct, epoch)
        loss, accuracy = test(model, valid_loader)
        test_log(loss, accuracy, example_ct, epoch)


def test(model, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            output = model(data)
            test_loss += F.cross_entropy(output, target, reduction='sum')
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum()
    test_loss /= len(test_loader.dataset)
    accuracy = 100. * correct / len(test_loader.dataset)
    return test_loss, accuracy


def train_log(loss, example_ct, epoch):
    loss = float(loss)
    wandb.log({"epoch": epoch, "train/loss": loss}, step=example_ct)


def test_log(loss, accuracy, example_ct, epoch):
    loss = float(loss)
    accuracy = float(accuracy)
    wandb.log({"epoch": epoch, "validation/loss": loss, "validation/accuracy": accuracy}, step=example_ct)


def evaluate(model, test_loader):
    loss, accuracy = test(model, test_loader)
    highest_losses, hardest_examples, true_labels, predictions = get_hardest_k_examples(model, test_loader.dataset)
    return loss, accuracy, highest_losses, hardest_examples, true_labels, predictions


def get_hardest_k_examples(model, testing_set, k=32):
    model.eval()
    loader = DataLoader(testing_set, 1, shuffle=False)
    losses = None
    predictions = None
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            loss = F.cross_entropy(output, target)
            pred = output.argmax(dim=1, keepdim=True)
            if losses is None:
                losses = loss.view((1, 1))
                predictions = pred
            else:
                losses = torch.cat((losses, loss.view((1, 1))), 0)
                predictions = torch.cat((predictions, pred), 0)
    argsort_loss = torch.argsort(losses, dim=0)
    highest_k_losses = losses[argsort_loss[-k:]]
    hardest_k_examples = testing_set[argsort_loss[-k:]][0]
    true_labels = testing_set[argsort_loss[-k:]][1]
    predicted_labels = predictions[argsort_loss[-k:]]
    return highest_k_losses, hardest_k_examples, true_labels, predicted_labels


def train_and_log(config):
    with wandb.init(project="artifacts-example", job_type="train", config=config) as run:
        config = wandb.config
        data = run.use_artifact('mnist-preprocess:latest')
        data_dir = data.download()
        training_dataset = read(data_dir, "training")
        validation_dataset = read(data_dir, "validation")
        train_loader = DataLoader(training_dataset, batch_size=config.batch_size)
        validation_loader = DataLoader(validation_dataset, batch_size=config.batch_size)
        model_artifact = run.use_artifact("convnet:latest")
        model_dir = model_artifact.download()
        model_path = os.path.join(model_dir, "initialized_model.pth")
        model_config = model_artifact.metadata
        config.update(model_config)
        model = ConvNet(**model_config)
        model.load_state_dict(torch.load(model_path))
        model = model.to(device)
        train(model, train_loader, validation_loader, config)
        model_artifact = wandb.Artifact(
            "trained-model", type="model",
            description="Trained NN model",
            metadata=dict(model_config))
        torch.save(model.state_dict(), "trained_model.pth")
        model_artifact.add_file("trained_model.pth")
        wandb.save("trained_model.pth")
        run.log_artifact(model_artifact)
    return model


def evaluate_and_log(config=None):
    with wandb.init(project="artifacts-example", job_type="report", config=config) as run:
        data = run.use_artifact('mnist-preprocess:latest')
        data_dir = data.download()
        testing_set = read(data_dir, "test")
        test_loader = torch.utils.data.DataLoader(testing_set, batch_size=128, shuffle=False)
        model_artifact = run.use_artifact("trained-model:latest")
        model_dir = model_artifact.download()
        model_path = os.path.join(model_dir, "trained_model.pth")
        model_config = model_artifact.metadata
        model = ConvNet(**model_config)
        model.load_state_dict(torch.load(model_path))
        model.to(device)
        loss, accuracy, highest_losses, hardest_examples, true_labels, preds = evaluate(model, test_loader)
        run.summary.update({"loss": loss, "accuracy": accuracy})
        wandb.log({"high-loss-examples":
                   [wandb.Image(hard_example, caption=str(int(pred)) + "," + str(int(label)))
                    for hard_example, pred, label in zip(hardest_examples, preds, true_labels)]})


test.__test__ = False  # the tutorial's names, not pytest tests
test_log.__test__ = False


def run_tutorial() -> None:
    torch.manual_seed(0)
    load_and_log()
    preprocess_and_log({"normalize": True, "expand_dims": True})
    build_model_and_log({"hidden_layer_sizes": [32, 64], "kernel_sizes": [3], "activation": "ReLU",
                         "pool_sizes": [2], "dropout": 0.5, "num_classes": 10})
    train_and_log({"batch_size": 128, "epochs": 1, "batch_log_interval": 25, "optimizer": "Adam"})
    evaluate_and_log()


def test_tutorial_pipeline_runs_unchanged(store_url: str) -> None:
    run_tutorial()
    api = wandb.Api()
    raw = api.artifact("artifacts-example/mnist-raw:v0")
    assert raw.metadata == {"source": "torchvision.datasets.MNIST", "sizes": [200, 50, 50]}
    assert api.artifact("artifacts-example/mnist-preprocess:v0").metadata == {"normalize": True, "expand_dims": True}
    assert api.artifact("artifacts-example/convnet:v0").metadata["hidden_layer_sizes"] == [32, 64]
    trained = api.artifact("artifacts-example/trained-model:latest")
    assert (trained.version, trained.type) == ("v0", "model")
    for name in ("mnist-raw", "mnist-preprocess", "convnet", "trained-model"):
        assert "latest" in api.artifact(f"artifacts-example/{name}:v0").aliases

    load_and_log()  # re-running the load step makes no new version
    assert [a.version for a in api.artifact_versions("artifacts-example/mnist-raw")] == ["v0"]

    graph = api.lineage("artifacts-example/trained-model:latest", direction="upstream")
    labels = {n.label for n in graph.nodes.values()}
    assert "dataset:mnist-raw:v0" in labels and "dataset:mnist-preprocess:v0" in labels
    job_types = {n.type for n in graph.nodes.values() if n.kind == "run"}
    assert {"train", "preprocess-data", "load-data", "initialize"} <= job_types
    assert {n.label for n in graph.view(explode=False).nodes.values()} == {"dataset", "model", "load-data", "preprocess-data", "initialize", "train"}

    report = next(r for r in api.runs("artifacts-example") if r.job_type == "report")
    assert report.state == "finished"
    assert isinstance(report.summary["loss"], float) and isinstance(report.summary["accuracy"], float)
    images = [row["high-loss-examples"] for row in report.history() if "high-loss-examples" in row][0]
    assert len(images) == 32 and all(img["_type"] == "image" and "," in img["caption"] for img in images)
    png = api.store.blobs.read(images[0]["sha256"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    train_run = next(r for r in api.runs("artifacts-example") if r.job_type == "train")
    assert train_run.config["optimizer"] == "Adam" and train_run.config["hidden_layer_sizes"] == [32, 64]
    assert any("train/loss" in row for row in train_run.history())
    assert [a.name for a in train_run.used_artifacts()] == ["mnist-preprocess", "convnet"]
    assert [a.name for a in train_run.logged_artifacts()] == ["trained-model"]
    assert [f.path for f in train_run.files()] == ["trained_model.pth"]
