"""Domain classifiers the harness trains itself (no downloaded weights), for feature-space metrics.

Inception weights cannot be fetched here, and Inception features of 28 px grey digits say little
anyway; so the harness trains one small CNN per labelled dataset (MNIST digits, Fashion-MNIST
classes, CIFAR-10 classes, the class subfolders of an image folder) and uses its penultimate layer
(``FEATURE_DIM`` units) as the feature space of FID, KID, precision/recall and density/coverage,
and its predictions to read the modes of Stacked MNIST. Numbers in that space are comparable only
with numbers from the same classifier record.

A classifier is trained once per (dataset, data root, config) and cached outside the data root,
under ``classifiers/`` in the harness's cache folder (``$GVAE_BENCH_CACHE``, see
``gvae_bench.checkpoints.cache_folder``), as weights (``<key>.pt``) and a JSON record with its
test accuracy, input shape, class count, config, seed and software versions. A benchmark whose
labels come with the user's own files (``Benchmark.classifier_source``) keys its classifier by a
SHA-256 of the very tensors it is trained and tested on instead of the data root.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from gvae_bench.checkpoints import cache_folder, safe_load
from gvae_bench.config import ConfigBase
from gvae_bench.errors import UserError
from gvae_bench.atomic import atomic_save, atomic_write_json
from gvae_bench.records import now, software_versions
from gvae_bench.registry import BENCHMARKS

if TYPE_CHECKING:
    from gvae_bench.contracts.benchmark import Benchmark

log = logging.getLogger(__name__)

FEATURE_DIM = 128
#: the image sides (px) a domain classifier takes; its input is (1 or 3, side, side)
SIDES = (28, 32, 64, 128)


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
    layer and a linear head over ``n_classes``, for ``channels``-channel ``size`` x ``size`` images
    in [-1, 1]. The blocks leave 7x7 maps at 28 px and 8x8 at 32 px; at 64 and 128 px one and two
    more 2x2 max poolings bring the maps to 8x8 before the feature layer. ``in_channels`` is what
    the evaluation reads a sample's channels by (``EvalContext.features``)."""

    def __init__(self, width: int = 16, n_classes: int = 10, channels: int = 1, size: int = 28) -> None:
        super().__init__()
        if channels not in (1, 3) or size not in SIDES:
            raise ValueError(f"a domain classifier takes 1 or 3 channels of {SIDES} px, got {channels} x {size}")
        w, extra = width, {64: 1, 128: 2}.get(size, 0)
        side = size // 4 // 2**extra
        self.in_channels, self.n_classes, self.size = channels, n_classes, size
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), *[nn.MaxPool2d(2) for _ in range(extra)], nn.Flatten(), nn.Dropout(0.25),
            nn.Linear(2 * w * side * side, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURE_DIM, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def cache_root() -> Path:
    return cache_folder("classifiers")


def _key(dataset: str, data_root: Path, config: ClassifierConfig, data_sha256: str | None = None) -> str:
    where = {"data_sha256": data_sha256} if data_sha256 is not None else {"data_root": str(Path(data_root).resolve())}
    text = json.dumps({"dataset": dataset, **where, **config.to_dict()}, sort_keys=True)
    return f"{dataset}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def tensors_sha256(*tensors: torch.Tensor | None) -> str:
    """SHA-256 over the dtype, shape and bytes of each tensor in turn (None counts as empty)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        if tensor is None:
            digest.update(b"none;")
            continue
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype}{tuple(array.shape)};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


@torch.no_grad()
def _accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = sum(int((model(images[i : i + 1000]).argmax(1) == labels[i : i + 1000]).sum())
                  for i in range(0, len(images), 1000))
    return correct / len(images)


def train_classifier(dataset: str, data_root: Path, config: ClassifierConfig | None = None,
                     source: Benchmark | None = None) -> tuple[DomainClassifier, dict[str, Any]]:
    """The classifier of ``dataset`` (a registered benchmark of labelled 1- or 3-channel square
    images, see ``SIDES``): loaded from the cache when it was trained before, else trained and cached.

    ``source``: the benchmark instance whose splits train it (``Benchmark.classifier_source``: labels
    that come with the user's files), keyed by its tensors; None: ``dataset`` at its default settings
    under ``data_root``, keyed by the data root.
    """
    config = config or ClassifierConfig()
    splits = source.load() if source is not None else None
    digest = None if splits is None else tensors_sha256(splits.train, splits.train_labels,
                                                        splits.test, splits.test_labels)
    key = _key(dataset, data_root, config, digest)
    weights, record_path = cache_root() / f"{key}.pt", cache_root() / f"{key}.json"
    if weights.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        model = DomainClassifier(config.width, record.get("n_classes", 10), record.get("channels", 1),
                                 record.get("size", 28))
        model.load_state_dict(safe_load(weights))
        return model.eval(), record

    benchmark = source if source is not None else BENCHMARKS.get(dataset)(data_root)
    shape = tuple(benchmark.spec.shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] != shape[2] or shape[1] not in SIDES:
        raise UserError(f"{dataset}: domain classifiers are for labelled 1- or 3-channel square images of "
                        f"{', '.join(map(str, SIDES))} px such as mnist or cifar10; {dataset} has samples of "
                        f"shape {shape}")
    splits = splits or benchmark.load()
    if splits.train_labels is None or splits.test_labels is None:
        raise UserError(f"{dataset}: its data have no class labels, so no domain classifier can be trained on them")
    train_x, train_y = splits.train, splits.train_labels
    if config.train_limit is not None:
        train_x, train_y = train_x[: config.train_limit], train_y[: config.train_limit]
    n_classes = int(max(int(splits.train_labels.max()), int(splits.test_labels.max()))) + 1
    with torch.enable_grad():  # callers may be evaluating under no_grad
        model = _fit(train_x, train_y, config, dataset, n_classes)
    record = {
        "dataset": dataset, "key": key, "config": config.to_dict(), "data_root": str(Path(data_root).resolve()),
        "n_train": len(train_x), "n_test": len(splits.test),
        "test_accuracy": _accuracy(model, splits.test, splits.test_labels),
        "feature_dim": FEATURE_DIM, "n_classes": n_classes, "channels": shape[0], "size": shape[1],
        "trained": now(), "versions": software_versions(),
    }
    if digest is not None:
        record["data_sha256"] = digest
    atomic_save(weights, lambda buffer: torch.save(model.state_dict(), buffer))
    atomic_write_json(record_path, record)
    return model.eval(), record


def _fit(train_x: torch.Tensor, train_y: torch.Tensor, config: ClassifierConfig, dataset: str,
         n_classes: int) -> DomainClassifier:
    """Cross-entropy training with Adam from weights drawn with ``config.seed``, shuffled epochs from
    a seeded generator; the input shape is the training images'."""
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = DomainClassifier(config.width, n_classes, train_x.shape[1], train_x.shape[2])
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
