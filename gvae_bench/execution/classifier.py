"""Domain classifiers the harness trains itself (no downloaded weights), for feature-space metrics.

Inception weights cannot be fetched here, and Inception features of 28 px grey digits say little
anyway; so the harness trains one small CNN per labelled dataset (MNIST digits, Fashion-MNIST
classes, CIFAR-10 classes, the class subfolders of an image folder) and uses its penultimate layer
(``FEATURE_DIM`` units) as the feature space of FID, KID, precision/recall and density/coverage,
and its predictions to read the modes of Stacked MNIST. Numbers in that space are comparable only
with numbers from the same classifier record.

A classifier is trained once per (dataset, data root, config) and cached outside the data root,
under ``classifiers/`` in the harness's cache folder (``$GVAE_BENCH_CACHE``, see
``gvae_bench.execution.checkpoints.cache_folder``), as weights (``<key>.pt``) and a JSON record with its
test accuracy, input shape, class count, config, seed and software versions. A benchmark whose
labels come with the user's own files (``Benchmark.classifier_source``) keys its classifier by a
SHA-256 of the very tensors it is trained and tested on instead of the data root.

**Pinned classifiers.** For MNIST and Fashion-MNIST the classifier is a fixed artefact shipped
with the package: ``gvae_bench/pinned/<dataset>-v<N>.safetensors`` beside ``pinned/classifiers.json``,
which names each dataset's current version, its file's SHA-256 and its training record. A run at
the default classifier settings loads that file and checks its SHA-256 on every machine (a changed
file is an error, never a silent retrain), so a feature-space number means the same on every
machine, as FID's does with Inception's pinned weights (Heusel et al. 2017). Each result's
``details`` name the classifier's version and SHA-256, and tables neither pair nor pool runs
scored by different classifiers. A new version is made only by ``runner.py classifier --dataset D
--retrain`` (``retrain_pinned``). Classifiers of other datasets (an image folder, CIFAR-10) are
trained on first use and cached as above; their records carry the SHA-256 of their weights too.
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

from gvae_bench.execution.checkpoints import cache_folder
from gvae_bench.config import ConfigBase
from gvae_bench.errors import UserError
from gvae_bench.atomic import atomic_save, atomic_write_json
from gvae_bench.execution.records import now, software_versions
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


#: the folder of the pinned classifiers and their manifest (shipped with the package)
PINNED_DIR = Path(__file__).resolve().parents[1] / "pinned"
PINNED_MANIFEST = "classifiers.json"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_manifest(folder: Path = PINNED_DIR) -> dict[str, Any]:
    """The manifest of the pinned classifiers: dataset -> {"version", "file", "sha256", "record"}."""
    path = Path(folder) / PINNED_MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _save_weights(path: Path, model: DomainClassifier) -> str:
    """Write ``model``'s weights as safetensors (atomically) and return the file's SHA-256."""
    from safetensors.torch import save

    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    atomic_save(path, lambda buffer: buffer.write(save(state)))
    return file_sha256(path)


def _load_weights(path: Path, record: dict[str, Any], width: int) -> DomainClassifier:
    """A classifier from a safetensors file (tensors only: nothing in the file can run)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} cannot be read as classifier weights (safetensors): {exc}") from None
    model = DomainClassifier(width, record.get("n_classes", 10), record.get("channels", 1), record.get("size", 28))
    model.load_state_dict(state)
    return model.eval()


def load_pinned(dataset: str, folder: Path = PINNED_DIR) -> tuple[DomainClassifier, dict[str, Any]] | None:
    """The pinned classifier of ``dataset`` and its record (with ``version``, ``sha256``, ``pinned``),
    after checking the file's SHA-256 against the manifest; None when ``dataset`` has none pinned.
    A file whose SHA-256 differs is a ``UserError``: the feature space would not be the pinned one."""
    entry = pinned_manifest(folder).get(dataset)
    if entry is None:
        return None
    path = Path(folder) / entry["file"]
    if not path.is_file():
        raise UserError(f"the pinned {dataset} classifier {path} is missing; restore it from the repository "
                        f"(git checkout -- {path.name}) or reinstall gvae-bench")
    found = file_sha256(path)
    if found != entry["sha256"]:
        raise UserError(f"{path} has SHA-256 {found}, not the pinned {entry['sha256']}: the weights were changed; "
                        f"restore the file from the repository, or make a new version with "
                        f"`runner.py classifier --dataset {dataset} --retrain`")
    record = {**entry["record"], "version": f"{dataset}-v{entry['version']}", "sha256": found, "pinned": True}
    return _load_weights(path, record, record["config"]["width"]), record


def _is_default(config: ClassifierConfig) -> bool:
    return config.to_dict() == ClassifierConfig().to_dict()


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
    if source is None and _is_default(config):
        pinned = load_pinned(dataset)
        if pinned is not None:
            return pinned
    splits = source.load() if source is not None else None
    digest = None if splits is None else tensors_sha256(splits.train, splits.train_labels,
                                                        splits.test, splits.test_labels)
    key = _key(dataset, data_root, config, digest)
    weights, record_path = cache_root() / f"{key}.safetensors", cache_root() / f"{key}.json"
    if weights.is_file() and record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("sha256") == file_sha256(weights):
            return _load_weights(weights, record, config.width), record
        log.warning("%s does not match the SHA-256 in %s; training the classifier again", weights, record_path.name)

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
        "trained": now(), "versions": software_versions(), "torch_threads": torch.get_num_threads(),
    }
    if digest is not None:
        record["data_sha256"] = digest
    record.update(sha256=_save_weights(weights, model), version=f"cache:{key}", pinned=False)
    atomic_write_json(record_path, record)
    return model.eval(), record


def retrain_pinned(dataset: str, data_root: Path, folder: Path = PINNED_DIR) -> dict[str, Any]:
    """Train ``dataset``'s classifier afresh at the default settings and pin it as the next version:
    ``<dataset>-v<N>.safetensors`` in ``folder`` and its entry in the manifest (the version before
    stays on disk, and records scored by it keep naming its SHA-256). Returns the new entry."""
    benchmark = BENCHMARKS.get(dataset)(data_root)
    splits = benchmark.load()
    if splits.train_labels is None or splits.test_labels is None:
        raise UserError(f"{dataset}: its data have no class labels, so no domain classifier can be trained on them")
    config = ClassifierConfig()
    n_classes = int(max(int(splits.train_labels.max()), int(splits.test_labels.max()))) + 1
    with torch.enable_grad():
        model = _fit(splits.train, splits.train_labels, config, dataset, n_classes)
    manifest = pinned_manifest(folder)
    version = int(manifest.get(dataset, {}).get("version", 0)) + 1
    name = f"{dataset}-v{version}.safetensors"
    Path(folder).mkdir(parents=True, exist_ok=True)
    sha256 = _save_weights(Path(folder) / name, model)
    shape = tuple(benchmark.spec.shape)
    record = {"dataset": dataset, "config": config.to_dict(), "n_train": len(splits.train), "n_test": len(splits.test),
              "test_accuracy": _accuracy(model, splits.test, splits.test_labels), "feature_dim": FEATURE_DIM,
              "n_classes": n_classes, "channels": shape[0], "size": shape[1], "trained": now(),
              "versions": software_versions(), "torch_threads": torch.get_num_threads()}
    manifest[dataset] = {"version": version, "file": name, "sha256": sha256, "record": record}
    atomic_write_json(Path(folder) / PINNED_MANIFEST, manifest)
    log.info("pinned %s as %s (SHA-256 %s)", dataset, name, sha256)
    return manifest[dataset]


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
