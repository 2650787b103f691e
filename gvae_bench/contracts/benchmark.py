"""What every benchmark (dataset) gives the runner: a data spec and in-memory train/test tensors."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import torch

from gvae_bench.config import ConfigBase


@dataclass(frozen=True)
class DataSpec:
    """The shape and kind of one sample (channels first, no batch axis).

    ``value_range`` is the interval the samples live in (images are scaled to [-1, 1], the paper's
    Section 5), or None for unbounded data such as the 2D mixtures.
    """

    shape: tuple[int, ...]
    kind: Literal["image", "volume", "points"]
    value_range: tuple[float, float] | None = (-1.0, 1.0)


@dataclass
class DataSplits:
    """The data of one benchmark held as tensors (float32, in ``DataSpec.value_range``)."""

    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchmarkConfig(ConfigBase):
    """Settings every benchmark understands.

    ``train_limit``: use only the first N training samples (None: all); profiles use it to keep
    tests fast. It is part of the resolved config, so it changes the config hash.
    """

    train_limit: int | None = None

    def validate(self) -> None:
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"train_limit must be a positive number of samples or None, got {self.train_limit}")


@dataclass
class DrawnDataConfig(BenchmarkConfig):
    """For benchmarks whose samples are drawn in code: ``n_train``/``n_test`` samples per split,
    drawn with ``data_seed`` (fixed, not the run's seed, so every run sees the same data)."""

    n_train: int = 100_000
    n_test: int = 10_000
    data_seed: int = 1234

    def validate(self) -> None:
        super().validate()
        if self.n_train < 1 or self.n_test < 2:
            raise ValueError(f"n_train must be >= 1 and n_test >= 2, got {self.n_train}, {self.n_test}")


BatchTransform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def binarize(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Bernoulli-sample pixels of grey images in [-1, 1]: each is 1 with probability (x + 1) / 2
    (Salakhutdinov and Murray 2008), returned as {-1, 1} in the data's range."""
    probabilities = ((images + 1.0) / 2.0).clamp_(0.0, 1.0)
    uniform = torch.rand(probabilities.shape, generator=generator).to(images.device)
    return (uniform < probabilities).to(images.dtype) * 2.0 - 1.0


class Benchmark(ABC):
    """A registered dataset. Subclasses set ``Config`` and implement ``spec`` and ``_load``.

    What a benchmark offers beyond its samples it declares with class attributes, as models declare
    ``can_*``, so metrics and commands ask the flag instead of probing for methods:
    ``classifier_dataset`` (a domain classifier's feature space), ``n_modes`` (modes read by that
    classifier), ``modes`` (mode centres known exactly), ``can_convert_hu`` (``to_hu``: CT values
    in Hounsfield units; ``sample_spacing_mm``: their pixel or voxel size) and ``can_export_nifti`` (``write_nifti``).
    """

    Config: ClassVar[type[BenchmarkConfig]] = BenchmarkConfig
    registered_name: ClassVar[str]
    #: the labelled dataset whose domain classifier gives this benchmark's feature space (None: none);
    #: a classifier of C channels reads a sample's channels C at a time (Stacked MNIST: MNIST's
    #: 1-channel classifier reads each of the three digits)
    classifier_dataset: ClassVar[str | None] = None
    #: how the likelihood metrics (metrics/likelihood.py) read the test data: "binarized" (one fixed,
    #: seeded binarization of grey images, Bernoulli observations; the MNIST log-likelihood
    #: literature's protocol) or "continuous" (the data as it is, Gaussian observations)
    likelihood_data: ClassVar[str] = "continuous"
    #: the number of modes the domain classifier reads off a sample (Stacked MNIST: 1000 digit
    #: triples); None: the benchmark has no classifier-read modes
    n_modes: ClassVar[int | None] = None
    #: True: ``to_hu`` maps samples back to Hounsfield units (CT benchmarks)
    can_convert_hu: ClassVar[bool] = False
    #: True: ``write_nifti`` writes samples as NIfTI files (CT benchmarks)
    can_export_nifti: ClassVar[bool] = False

    def __init__(self, data_root: Path, config: BenchmarkConfig | None = None) -> None:
        self.data_root = Path(data_root)
        self.config = config if config is not None else self.Config()
        self._splits: DataSplits | None = None

    @property
    @abstractmethod
    def spec(self) -> DataSpec:
        """Shape and kind of a sample."""

    @abstractmethod
    def _load(self) -> DataSplits:
        """Read (or make) the full train and test sets."""

    def classifier_source(self) -> "Benchmark | None":
        """The benchmark whose own labelled splits train the domain classifier, at its own settings
        (for labels that come with the user's files, e.g. an image folder's class subfolders; the
        classifier is then keyed by those tensors). None: the registered ``classifier_dataset`` at
        its default settings under the data root."""
        return None

    def train_batch_transform(self) -> "BatchTransform | None":
        """A function applied to every training batch as it is drawn (with the batch stream's
        seeded generator), e.g. dynamic binarization; None: batches are used as stored."""
        return None

    def load(self) -> DataSplits:
        """The train and test tensors, loaded once and cut to ``train_limit``."""
        if self._splits is None:
            splits = self._load()
            if self.config.train_limit is not None:
                n = self.config.train_limit
                splits.train = splits.train[:n]
                if splits.train_labels is not None:
                    splits.train_labels = splits.train_labels[:n]
            self._splits = splits
        return self._splits

    @property
    def modes(self) -> torch.Tensor | None:
        """Centres of the true modes, for benchmarks whose modes are known exactly (else None)."""
        return None

    @property
    def mode_std(self) -> float | None:
        """Standard deviation of each mode, where modes are known exactly."""
        return None

    def to_hu(self, values: torch.Tensor) -> torch.Tensor:
        """Samples in the data's range back to Hounsfield units (benchmarks with ``can_convert_hu``)."""
        raise TypeError(f"{type(self).__name__} holds no CT data in Hounsfield units")

    def sample_spacing_mm(self) -> tuple[float, ...]:
        """The physical size in mm of one pixel or voxel of a sample, per spatial axis in (x, y[, z])
        order (benchmarks with ``can_convert_hu``)."""
        raise TypeError(f"{type(self).__name__} holds no CT data with a physical spacing")

    def write_nifti(self, samples: torch.Tensor, folder: Path) -> list[Path]:
        """Write samples as NIfTI files into ``folder`` (benchmarks with ``can_export_nifti``)."""
        raise TypeError(f"{type(self).__name__} does not write NIfTI files")
