"""Stacked MNIST: three MNIST digits drawn independently and stacked as the channels of one image.

The standard mode-collapse benchmark of Metz et al. 2017 (Unrolled GANs), Srivastava et al. 2017
(VEEGAN) and Lin et al. 2018 (PacGAN): 10^3 = 1000 modes, one per ordered digit triple. PacGAN's
code draws its training set from all 70,000 MNIST images; here the training set is drawn from
MNIST's training split and the test set from its test split, so a model never sees a test digit.
Each sample's label is the mode index 100 * d_red + 10 * d_green + d_blue. The draws are fixed by
``data_seed``, not by the run's seed, so every run sees the same data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvae_bench.contracts.benchmark import Benchmark, DataSpec, DataSplits, DrawnDataConfig
from gvae_bench.benchmarks.torchvision_images import MNIST
from gvae_bench.registry import BENCHMARKS


@dataclass
class StackedMNISTConfig(DrawnDataConfig):
    """As ``DrawnDataConfig``, with 60,000 stacked training images by default."""

    n_train: int = 60_000


def stack_digits(images: torch.Tensor, labels: torch.Tensor, n: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of shape (3, H, W) whose channels are three independently drawn single-channel
    ``images``, and their mode labels 100 * l_0 + 10 * l_1 + l_2."""
    index = torch.randint(len(images), (n, 3), generator=generator)
    stacked = images[index].squeeze(2)  # (n, 3, H, W): one grey digit per channel
    modes = labels[index[:, 0]] * 100 + labels[index[:, 1]] * 10 + labels[index[:, 2]]
    return stacked, modes


@BENCHMARKS.register("stacked_mnist")
class StackedMNIST(Benchmark):
    """Stacked MNIST: 3 random digits as RGB channels, 28x28, 1000 modes (Metz / VEEGAN / PacGAN)."""

    Config = StackedMNISTConfig
    n_modes = 1000
    classifier_dataset = "mnist"  # read channel by channel

    @property
    def spec(self) -> DataSpec:
        return DataSpec(shape=(3, 28, 28), kind="image", value_range=(-1.0, 1.0))

    def _load(self) -> DataSplits:
        cfg: StackedMNISTConfig = self.config  # type: ignore[assignment]
        mnist = MNIST(self.data_root).load()
        generator = torch.Generator().manual_seed(cfg.data_seed)
        train, train_modes = stack_digits(mnist.train, mnist.train_labels, cfg.n_train, generator)
        test, test_modes = stack_digits(mnist.test, mnist.test_labels, cfg.n_test, generator)
        return DataSplits(train, test, train_modes, test_modes,
                          info={"data_seed": cfg.data_seed, "source": mnist.info.get("source")})
