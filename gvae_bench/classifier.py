"""Domain classifiers the harness trains itself (no downloaded weights), for feature-space metrics.

Inception weights cannot be fetched here, and Inception features of 28 px grey digits say little
anyway; so the harness trains one small CNN per labelled dataset (MNIST digits, Fashion-MNIST
classes) and uses its penultimate layer (``FEATURE_DIM`` units) as the feature space of FID, KID,
precision/recall and density/coverage, and its predictions to read the modes of Stacked MNIST.
Numbers in that space are comparable only with numbers from the same classifier record.

A classifier is trained once per (dataset, data root, config) and cached outside the data root,
in ``$GVAE_BENCH_CACHE`` (default ``~/.cache/gvae-bench``) under ``classifiers/``, as weights
(``<key>.pt``) and a JSON record with its test accuracy, config, seed and software versions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gvae_bench.checkpoints import safe_load
from gvae_bench.config import ConfigBase
from gvae_bench.errors import UserError
from gvae_bench.atomic import atomic_save, atomic_write_json
from gvae_bench.records import now, software_versions
from gvae_bench.registry import BENCHMARKS

log = logging.getLogger(__name__)

FEATURE_DIM = 128
CACHE_ENV = "GVAE_BENCH_CACHE"


@dataclass
class ClassifierConfig(ConfigBase):
    """Training of a domain classifier: Adam ``lr``, ``epochs`` over ``train_limit`` images (None:
    all), ``width`` channels in the first block, ``seed``."""

    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    width: int = 16
    seed: int = 0
    train_limit: int | None = None

    def validate(self) -> None:
        self.require_at_least(1, "epochs", "batch_size", "width")
        self.require(positive=("lr",))


class DomainClassifier(nn.Module):
    """Two conv blocks (3x3 convolutions, ReLU, 2x2 max pooling), a ``FEATURE_DIM``-unit feature
    layer and a linear class head, for 1-channel 28x28 images in [-1, 1]."""

    def __init__(self, width: int = 16, n_classes: int = 10) -> None:
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
            nn.Linear(2 * w * 7 * 7, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURE_DIM, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "gvae-bench")) / "classifiers"


def _key(dataset: str, data_root: Path, config: ClassifierConfig) -> str:
    text = json.dumps({"dataset": dataset, "data_root": str(Path(data_root).resolve()), **config.to_dict()}, sort_keys=True)
    return f"{dataset}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


@torch.no_grad()
def _accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(images[i : i + 1000]).argmax(1) == labels[i : i + 1000]).sum())
                  for i in range(0, len(images), 1000))
    return correct / len(images)


def train_classifier(dataset: str, data_root: Path, config: ClassifierConfig | None = None) -> tuple[DomainClassifier, dict[str, Any]]:
    """The classifier of ``dataset`` (a registered benchmark with 10 class labels): loaded from the
    cache when this (dataset, data root, config) was trained before, else trained and cached."""
    config = config or ClassifierConfig()
    key = _key(dataset, data_root, config)
    weights, record_path = cache_root() / f"{key}.pt", cache_root() / f"{key}.json"
    if weights.is_file() and record_path.is_file():
        model = DomainClassifier(config.width)
        model.load_state_dict(safe_load(weights))
        return model.eval(), json.loads(record_path.read_text())

    benchmark = BENCHMARKS.get(dataset)(data_root)
    if benchmark.spec.shape != (1, 28, 28):
        raise UserError(f"{dataset}: domain classifiers are for 1-channel 28x28 labelled images such as "
                        f"mnist and fashion_mnist; {dataset} has samples of shape {benchmark.spec.shape}")
    splits = benchmark.load()
    train_x, train_y = splits.train, splits.train_labels
    if config.train_limit is not None:
        train_x, train_y = train_x[: config.train_limit], train_y[: config.train_limit]
    with torch.enable_grad():  # callers may be evaluating under no_grad
        model = _fit(train_x, train_y, config, dataset)
    record = {
        "dataset": dataset, "key": key, "config": config.to_dict(), "data_root": str(Path(data_root).resolve()),
        "n_train": len(train_x), "n_test": len(splits.test),
        "test_accuracy": _accuracy(model, splits.test, splits.test_labels),
        "feature_dim": FEATURE_DIM, "trained": now(), "versions": software_versions(),
    }
    atomic_save(weights, lambda buffer: torch.save(model.state_dict(), buffer))
    atomic_write_json(record_path, record)
    return model.eval(), record


def _fit(train_x: torch.Tensor, train_y: torch.Tensor, config: ClassifierConfig, dataset: str) -> DomainClassifier:
    """Cross-entropy training with Adam, shuffled epochs from a seeded generator."""
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = DomainClassifier(config.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), config.batch_size):
            index = order[start : start + config.batch_size]
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        log.info("%s classifier: epoch %d of %d done", dataset, epoch + 1, config.epochs)
    return model
