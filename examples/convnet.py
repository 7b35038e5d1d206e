"""The tutorial's small convolutional network, shared by ``mnist_pipeline.py`` and ``deploy.py``.

The constructor takes only JSON-friendly arguments so that its config can be stored as artifact
metadata and the model rebuilt from it anywhere: ``ConvNet.from_config(artifact.metadata)``.
"""
from __future__ import annotations

import inspect
from math import floor

import torch.nn as nn

NUM_CLASSES = 10
INPUT_SHAPE = (1, 28, 28)

# The config logged as metadata of the `convnet` artifact (the tutorial's model_config).
DEFAULT_CONFIG = {
    "hidden_layer_sizes": [32, 64],
    "kernel_sizes": [3],
    "activation": "ReLU",
    "pool_sizes": [2],
    "dropout": 0.5,
    "num_classes": NUM_CLASSES,
}


class ConvNet(nn.Module):
    """Two conv/activation/max-pool blocks, dropout, and a linear classifier."""

    def __init__(self, hidden_layer_sizes=(32, 64), kernel_sizes=(3,), activation="ReLU",
                 pool_sizes=(2,), dropout=0.5, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(input_shape[0], hidden_layer_sizes[0], kernel_size=kernel_sizes[0]),
            getattr(nn, activation)(),
            nn.MaxPool2d(kernel_size=pool_sizes[0]),
        )
        self.layer2 = nn.Sequential(
            nn.Conv2d(hidden_layer_sizes[0], hidden_layer_sizes[-1], kernel_size=kernel_sizes[-1]),
            getattr(nn, activation)(),
            nn.MaxPool2d(kernel_size=pool_sizes[-1]),
        )
        self.layer3 = nn.Sequential(nn.Flatten(), nn.Dropout(dropout))

        side = floor((input_shape[1] - kernel_sizes[0] + 1) / pool_sizes[0])  # after layer 1
        side = floor((side - kernel_sizes[-1] + 1) / pool_sizes[-1])  # after layer 2
        self.fc = nn.Linear(side * side * hidden_layer_sizes[-1], num_classes)

    def forward(self, x):
        return self.fc(self.layer3(self.layer2(self.layer1(x))))

    @classmethod
    def from_config(cls, config):
        """Build from a metadata dict, ignoring keys that are not constructor arguments
        (a trained model's metadata also records e.g. its validation accuracy)."""
        params = inspect.signature(cls.__init__).parameters
        return cls(**{key: value for key, value in dict(config).items() if key in params and key != "self"})
