"""Handwritten-digit data for the examples: real MNIST when possible, otherwise scikit-learn's digits.

``load_digits_dataset()`` returns ``([training, validation, test], source)`` where each split is a
``TensorDataset`` of ``x`` (uint8, ``[N, 28, 28]``, 0..255) and ``y`` (int64 labels 0..9), exactly the
shape of ``torchvision.datasets.MNIST``, and ``source`` is a string naming where the data came from
(record it in the artifact metadata).

* With torchvision installed and MNIST downloadable (or already under ``root``), the data is the real
  MNIST: training/validation come from the official training set, test from the official test set.
* Otherwise (no torchvision, no network) it is ``sklearn.datasets.load_digits``: 1,797 real 8x8 scans
  that ship inside scikit-learn, upscaled to 28x28 so the same model code runs unchanged.

Everything is deterministic: the same arguments give byte-identical tensors on every call, which is
what lets a re-run of the pipeline find its data artifact unchanged.
"""
from __future__ import annotations

import os
import socket

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

SEED = 0
MNIST_SOURCE = "torchvision.datasets.MNIST"
DIGITS_SOURCE = "sklearn.datasets.load_digits (8x8, upscaled to 28x28)"
SPLITS = ("training", "validation", "test")


def load_digits_dataset(train_size: int | None = None, subset: int | None = None,
                        root: str | None = None, download_timeout: float = 10.0):
    """Load digits as ``([training, validation, test], source)``.

    train_size: number of training examples; the rest of the training pool becomes validation
        (MNIST default 50,000 of 60,000, as in the tutorial; otherwise 5/6 of the pool).
    subset: total number of examples over the three splits (about 5/7 train, 1/7 validation,
        1/7 test), for quick runs; ``None`` or ``0`` means all of them.
    root: where torchvision keeps MNIST (default ``$MNIST_DIR`` or ``./data``).
    """
    loaded = _load_mnist(root or os.environ.get("MNIST_DIR", "./data"), download_timeout)
    if loaded is not None:
        (pool_x, pool_y), (test_x, test_y) = loaded
        source = MNIST_SOURCE
    else:
        x, y = _load_sklearn_digits()
        # 1/7 of the examples is the test set, the rest the training pool, after a seeded shuffle.
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
        x, y = x[order], y[order]
        n_test = round(len(x) / 7)
        (pool_x, pool_y), (test_x, test_y) = (x[n_test:], y[n_test:]), (x[:n_test], y[:n_test])
        source = DIGITS_SOURCE

    if subset:
        n_test = min(len(test_x), round(subset / 7))
        n_pool = min(len(pool_x), subset - n_test)
        pool_x, pool_y, test_x, test_y = pool_x[:n_pool], pool_y[:n_pool], test_x[:n_test], test_y[:n_test]
    if train_size is None:
        train_size = 50_000 if (source == MNIST_SOURCE and not subset) else round(len(pool_x) * 5 / 6)
    train_size = min(train_size, len(pool_x))

    # .clone() so that each split owns exactly its own storage: torch.save writes a tensor's whole
    # storage, so saving a slice of a bigger tensor would otherwise write the bigger tensor.
    def split(x, y):
        return TensorDataset(x.clone().contiguous(), y.clone().to(torch.int64).contiguous())

    datasets = [split(pool_x[:train_size], pool_y[:train_size]),
                split(pool_x[train_size:], pool_y[train_size:]),
                split(test_x, test_y)]
    sizes = ", ".join(f"{name} {len(ds)}" for name, ds in zip(SPLITS, datasets))
    print(f"digits: using {source} ({sizes})")
    return datasets, source


def _load_mnist(root: str, timeout: float):
    """``((x_train, y_train), (x_test, y_test))`` from torchvision, or ``None`` when unavailable."""
    try:
        import torchvision  # optional dependency
    except ImportError:
        return None
    mnist = torchvision.datasets.MNIST
    mnist.mirrors = [m for m in getattr(mnist, "mirrors", []) if not m.startswith("http://yann.lecun.com")]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # without network, fail fast instead of hanging
    try:
        train = mnist(root, train=True, download=True)
        test = mnist(root, train=False, download=True)
        return (train.data, train.targets), (test.data, test.targets)
    except Exception as exc:  # offline, mirror down, corrupt files...
        print(f"digits: MNIST unavailable ({type(exc).__name__}: {exc}); falling back to scikit-learn")
        return None
    finally:
        socket.setdefaulttimeout(previous)


def _load_sklearn_digits():
    """scikit-learn's 1,797 8x8 digits (values 0..16) as MNIST-like uint8 28x28 images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32) * (255.0 / 16.0)
    x = F.interpolate(x.unsqueeze(1), size=(28, 28), mode="bilinear", align_corners=False).squeeze(1)
    x = x.round().clamp(0, 255).to(torch.uint8)
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return x, y


if __name__ == "__main__":
    (training, validation, test), source = load_digits_dataset()
    x, y = training.tensors
    print(source, x.shape, x.dtype, y.shape, y.dtype, "labels:", torch.bincount(y).tolist())
