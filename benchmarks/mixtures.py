"""2D mixtures of Gaussians with exactly known modes: the classic mode-collapse benchmarks.

Geometry as in PacGAN's code (Lin et al. 2018; ``2DRing_GAN&PacGAN/config.py``,
``2DGrid_GAN&PacGAN/config.py``), also the setting of VEEGAN's Table 1 (Srivastava et al. 2017):

* ``ring8``: 8 equally weighted modes at (cos 2 pi i / 8, sin 2 pi i / 8), radius 1, std 0.01.
* ``grid25``: 25 equally weighted modes at (i, j) for i, j in {-4, -2, 0, 2, 4}, std 0.05.

Train and test sets are fixed draws (seeded by ``data_seed``, not by the run's seed, so every run
and every model sees the same data).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import torch

from gvae_bench.contracts.benchmark import Benchmark, DataSpec, DataSplits, DrawnDataConfig
from gvae_bench.registry import BENCHMARKS


class GaussianMixture2D(Benchmark):
    """Equal-weight isotropic Gaussian mixture in the plane with known centres."""

    Config = DrawnDataConfig
    std: ClassVar[float]

    @staticmethod
    @abstractmethod
    def centres() -> torch.Tensor:
        """The (n_modes, 2) mode centres."""

    @property
    def spec(self) -> DataSpec:
        return DataSpec(shape=(2,), kind="points", value_range=None)

    @property
    def modes(self) -> torch.Tensor:
        return self.centres()

    @property
    def mode_std(self) -> float:
        return self.std

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points and the index of the mode each was drawn from."""
        centres = self.centres()
        labels = torch.randint(len(centres), (n,), generator=generator)
        points = centres[labels] + self.std * torch.randn(n, 2, generator=generator)
        return points, labels

    def _load(self) -> DataSplits:
        cfg: DrawnDataConfig = self.config  # type: ignore[assignment]
        generator = torch.Generator().manual_seed(cfg.data_seed)
        train, train_labels = self.draw(cfg.n_train, generator)
        test, test_labels = self.draw(cfg.n_test, generator)
        return DataSplits(train, test, train_labels, test_labels, info={"data_seed": cfg.data_seed})


@BENCHMARKS.register("ring8")
class Ring8(GaussianMixture2D):
    """8 Gaussians on a ring of radius 1, std 0.01 (VEEGAN / PacGAN geometry)."""

    std = 0.01

    @staticmethod
    def centres() -> torch.Tensor:
        angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return torch.stack([angles.cos(), angles.sin()], dim=1)


@BENCHMARKS.register("grid25")
class Grid25(GaussianMixture2D):
    """25 Gaussians on a 5x5 grid with spacing 2, std 0.05 (PacGAN geometry)."""

    std = 0.05

    @staticmethod
    def centres() -> torch.Tensor:
        ticks = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return torch.cartesian_prod(ticks, ticks)
