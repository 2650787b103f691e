"""Network families shared by every model, chosen by the shape of the data.

A model never builds its own copy of a network: it asks this module for a generator, a critic or
an encoder for the data's shape, and the family that supports that shape builds it.

Families (more are added beside these, never inside a model file):

* ``dcgan28``: 28x28 images with 1 or 3 channels. The WGAN-GP MNIST architecture of Gulrajani et
  al. 2017 (``gan_mnist.py`` of their code, ``DIM = 64``): the generator maps z through a linear
  layer to ``4*DIM x 4 x 4``, then three 5x5 stride-2 transposed convolutions (the 8x8 map is
  cropped to 7x7) to 28x28; the critic trunk is three 5x5 stride-2 convolutions
  (DIM, 2*DIM, 4*DIM) with LeakyReLU(0.2) and no batch norm (the gradient penalty is per-sample,
  which batch norm would break). ``width`` is DIM.
* ``mlp2d``: points in R^2 (the Gaussian mixtures): three hidden layers of ``width`` units, ReLU in
  the generator and LeakyReLU(0.2) in the trunk.

An encoder is the critic's trunk with a different head (2 x latent_dim outputs: mean and log
variance of a diagonal Gaussian, or latent_dim for a deterministic encoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from gvae_bench.errors import UserError

OutputActivation = Literal["tanh", "identity"]


class _Crop(nn.Module):
    """Crops a feature map to ``size x size`` (the 8x8 -> 7x7 step of the 28 px generator)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.size, : self.size]


class _Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


def _activation(kind: OutputActivation) -> nn.Module:
    return nn.Tanh() if kind == "tanh" else nn.Identity()


@dataclass(frozen=True)
class NetworkFamily:
    """How to build a generator and a feature trunk for data of one family of shapes."""

    name: str
    supports: Callable[[tuple[int, ...]], bool]
    generator: Callable[[tuple[int, ...], int, int, OutputActivation], nn.Module]
    trunk: Callable[[tuple[int, ...], int], tuple[nn.Module, int]]


def _dcgan28_generator(shape: tuple[int, ...], latent_dim: int, width: int, out: OutputActivation) -> nn.Module:
    channels = shape[0]
    w = width
    return nn.Sequential(
        nn.Linear(latent_dim, 4 * 4 * 4 * w),
        nn.ReLU(),
        _Reshape(4 * w, 4, 4),
        nn.ConvTranspose2d(4 * w, 2 * w, 5, stride=2, padding=2, output_padding=1),  # 8x8
        nn.ReLU(),
        _Crop(7),
        nn.ConvTranspose2d(2 * w, w, 5, stride=2, padding=2, output_padding=1),  # 14x14
        nn.ReLU(),
        nn.ConvTranspose2d(w, channels, 5, stride=2, padding=2, output_padding=1),  # 28x28
        _activation(out),
    )


def _dcgan28_trunk(shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    channels = shape[0]
    w = width
    trunk = nn.Sequential(
        nn.Conv2d(channels, w, 5, stride=2, padding=2),  # 14x14
        nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 5, stride=2, padding=2),  # 7x7
        nn.LeakyReLU(0.2),
        nn.Conv2d(2 * w, 4 * w, 5, stride=2, padding=2),  # 4x4
        nn.LeakyReLU(0.2),
        nn.Flatten(),
    )
    return trunk, 4 * 4 * 4 * w


def _mlp2d_generator(shape: tuple[int, ...], latent_dim: int, width: int, out: OutputActivation) -> nn.Module:
    return nn.Sequential(
        nn.Linear(latent_dim, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, shape[0]),
        _activation(out),
    )


def _mlp2d_trunk(shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    trunk = nn.Sequential(
        nn.Linear(shape[0], width), nn.LeakyReLU(0.2),
        nn.Linear(width, width), nn.LeakyReLU(0.2),
        nn.Linear(width, width), nn.LeakyReLU(0.2),
    )
    return trunk, width


FAMILIES: list[NetworkFamily] = [
    NetworkFamily(
        name="dcgan28",
        supports=lambda s: len(s) == 3 and s[1:] == (28, 28) and s[0] in (1, 3),
        generator=_dcgan28_generator,
        trunk=_dcgan28_trunk,
    ),
    NetworkFamily(
        name="mlp2d",
        supports=lambda s: len(s) == 1,
        generator=_mlp2d_generator,
        trunk=_mlp2d_trunk,
    ),
]


def family_for(shape: tuple[int, ...]) -> NetworkFamily:
    """The network family that supports data of ``shape`` (channels first, no batch axis)."""
    shape = tuple(int(s) for s in shape)
    for family in FAMILIES:
        if family.supports(shape):
            return family
    raise UserError(
        f"no network family supports data of shape {shape}; supported: "
        "(1 or 3, 28, 28) images [dcgan28], (d,) points [mlp2d]"
    )


def build_generator(shape: tuple[int, ...], latent_dim: int, width: int, output: OutputActivation = "tanh") -> nn.Module:
    """A generator (or decoder) from R^latent_dim to data of ``shape``."""
    return family_for(shape).generator(tuple(shape), latent_dim, width, output)


class TrunkWithHead(nn.Module):
    """A feature trunk followed by a linear head: the critic (1 output) and the encoders."""

    def __init__(self, trunk: nn.Module, features: int, outputs: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(features, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def build_critic(shape: tuple[int, ...], width: int) -> TrunkWithHead:
    """A critic (or discriminator) mapping data of ``shape`` to one real number."""
    trunk, features = family_for(shape).trunk(tuple(shape), width)
    return TrunkWithHead(trunk, features, 1)


def build_encoder(shape: tuple[int, ...], latent_dim: int, width: int, gaussian: bool = True) -> TrunkWithHead:
    """The critic's trunk with an encoder head: 2*latent_dim outputs (mean, log variance) when
    ``gaussian``, else latent_dim (a deterministic code)."""
    trunk, features = family_for(shape).trunk(tuple(shape), width)
    return TrunkWithHead(trunk, features, 2 * latent_dim if gaussian else latent_dim)
