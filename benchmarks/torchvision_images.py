"""MNIST and Fashion-MNIST through torchvision's dataset classes and folder layout."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence, TypeVar

import torch
from torchvision import datasets

from gvae_bench.contracts.benchmark import BatchTransform, Benchmark, BenchmarkConfig, DataSpec, DataSplits, binarize
from gvae_bench.config import added_field
from gvae_bench.errors import DataMissingError
from gvae_bench.registry import BENCHMARKS

log = logging.getLogger(__name__)

OFFLINE_ENV = "GVAE_BENCH_OFFLINE"  # set to 1: never try to download, fail at once with the message
_RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


BINARIZE = ("none", "dynamic")

T = TypeVar("T")


def download_or_explain(download: Callable[[], T], folders: Sequence[Path], missing_message: Callable[[str], str],
                        what: str) -> T:
    """``download()`` (logged as ``what``), unless ``$GVAE_BENCH_OFFLINE`` is set; when it is set, or
    the download fails, a ``DataMissingError`` whose text is ``missing_message(why)``, after removing
    those of ``folders`` that did not exist before and are left empty."""
    if os.environ.get(OFFLINE_ENV):
        raise DataMissingError(missing_message(f"{OFFLINE_ENV} is set, so no download was tried"))
    log.info("%s; trying to download it", what)
    absent = [folder for folder in folders if not folder.exists()]
    try:
        return download()
    except Exception as exc:
        for folder in absent:  # the download's folders, if it left them empty
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise DataMissingError(missing_message(f"the download failed: {type(exc).__name__}")) from None


@dataclass
class GreyImagesConfig(BenchmarkConfig):
    """``binarize``: ``none`` trains on grey levels; ``dynamic`` draws a fresh binarization of every
    training batch (pixels ~ Bernoulli(grey level), Burda et al. 2015's protocol). The likelihood
    metrics always read one fixed, seeded binarization of the test set."""

    binarize: str = added_field("none", since="0.2")

    def validate(self) -> None:
        super().validate()
        if self.binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE)}, got {self.binarize!r}")


class TorchvisionGreyImages(Benchmark):
    """A 28x28 grey torchvision dataset, scaled to [-1, 1] (the paper's Section 5)."""

    Config = GreyImagesConfig
    dataset_class: ClassVar[type] = datasets.MNIST
    likelihood_data = "binarized"

    def train_batch_transform(self) -> BatchTransform | None:
        return binarize if self.config.binarize == "dynamic" else None

    @property
    def spec(self) -> DataSpec:
        return DataSpec(shape=(1, 28, 28), kind="image", value_range=(-1.0, 1.0))

    @property
    def raw_folder(self):
        return self.data_root / self.dataset_class.__name__ / "raw"

    def _open(self, train: bool):
        try:
            return self.dataset_class(str(self.data_root), train=train, download=False)
        except RuntimeError:
            pass  # not on disk: try the real download path, for users who have a network
        return download_or_explain(lambda: self.dataset_class(str(self.data_root), train=train, download=True),
                                   (self.raw_folder, self.raw_folder.parent, self.data_root), self._missing_message,
                                   f"{self.dataset_class.__name__} not found under {self.raw_folder}")

    def _missing_message(self, why: str) -> str:
        return (
            f"{self.registered_name}: no data in {self.raw_folder} ({why}); put the files "
            f"{', '.join(_RAW_FILES)} (uncompressed IDX, torchvision's layout) in {self.raw_folder}, "
            f"or pass --data-root pointing at the folder that holds {self.dataset_class.__name__}/raw"
        )

    def _check_raw_files(self) -> None:
        """A raw file that is present but shorter or longer than its IDX header says is an error
        naming it, its size and the expected size (an IDX file is a 4-byte magic number whose last
        byte counts the dimensions, one 4-byte big-endian size per dimension, then the bytes)."""
        for name in _RAW_FILES:
            path = self.raw_folder / name
            if not path.is_file():
                continue
            size = path.stat().st_size
            with open(path, "rb") as handle:
                header = handle.read(4)
                ndim = header[3] if len(header) == 4 and header[:3] == b"\x00\x00\x08" else None
                dims = handle.read(4 * ndim) if ndim else b""
            if ndim is None or len(dims) < 4 * ndim:
                raise DataMissingError(f"{self.registered_name}: {path} is present but is not an IDX file of unsigned "
                                       f"bytes ({size} bytes, header {header.hex() or 'empty'}); replace it with the "
                                       "uncompressed original")
            expected = 4 + 4 * ndim + math.prod(int.from_bytes(dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
            if size != expected:
                raise DataMissingError(f"{self.registered_name}: {path} is present but {size} bytes where its header "
                                       f"says {expected}: the file is truncated or corrupt; replace it with the "
                                       "uncompressed original")

    def _load(self) -> DataSplits:
        self._check_raw_files()
        train, test = self._open(train=True), self._open(train=False)

        def scale(images: torch.Tensor) -> torch.Tensor:
            return images.unsqueeze(1).float().div_(127.5).sub_(1.0)

        return DataSplits(
            train=scale(train.data),
            test=scale(test.data),
            train_labels=train.targets.clone(),
            test_labels=test.targets.clone(),
            info={"source": str(self.raw_folder), "n_train_full": len(train.data), "n_test": len(test.data)},
        )


@BENCHMARKS.register("mnist")
class MNIST(TorchvisionGreyImages):
    """MNIST digits, 60k train / 10k test, 28x28 grey, scaled to [-1, 1]."""

    dataset_class = datasets.MNIST
    classifier_dataset = "mnist"


@BENCHMARKS.register("fashion_mnist")
class FashionMNIST(TorchvisionGreyImages):
    """Fashion-MNIST clothes, 60k train / 10k test, 28x28 grey, scaled to [-1, 1]."""

    dataset_class = datasets.FashionMNIST
    classifier_dataset = "fashion_mnist"
