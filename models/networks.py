"""Network families shared by every model, chosen by the shape of the data.

A model never builds its own copy of a network: it asks this module for a generator, a critic or
an encoder for the data's shape, and the family that supports that shape builds it.

The choice of a family by shape is the core's (``gvae_bench.contracts.family``); this module
builds and registers the built-in families. Families (more are added beside these, never inside a
model file):

* ``dcgan28``: 28x28 images with 1 or 3 channels. The WGAN-GP MNIST architecture of Gulrajani et
  al. 2017 (``gan_mnist.py`` of their code, ``DIM = 64``): the generator maps z through a linear
  layer to ``4*DIM x 4 x 4``, then three 5x5 stride-2 transposed convolutions (the 8x8 map is
  cropped to 7x7) to 28x28; the critic trunk is three 5x5 stride-2 convolutions
  (DIM, 2*DIM, 4*DIM) with LeakyReLU(0.2) and no batch norm (the gradient penalty is per-sample,
  which batch norm would break). ``width`` is DIM.
* ``dcgan32``: 32x32 images with 1 or 3 channels (CIFAR-10, image folders at 32 px): the WGAN-GP
  CIFAR-10 architecture of the same code (``gan_cifar.py``): the generator maps z through a linear
  layer to ``4*DIM x 4 x 4`` and three 5x5 stride-2 transposed convolutions to 8, 16 and 32 px,
  with batch norm and ReLU after the linear layer and the first two convolutions (their generator
  has it; their MNIST one does not); the critic trunk is ``dcgan28``'s, which takes 32 px to 16, 8
  and 4 px, again without batch norm. ``width`` is DIM (128 in their code).
* ``mlp2d``: points in R^2 (the Gaussian mixtures): three hidden layers of ``width`` units, ReLU in
  the generator and LeakyReLU(0.2) in the trunk.
* ``resnet``: 64 and 128 px images, the ResNet generator and discriminator of the GVAE paper's
  Tables 1 and 2 (Sagar). With w = ``width`` (64 in the paper): generator linear -> 4w x S/4 x S/4,
  two residual blocks (4w), upsample x2, two blocks (4w -> 2w, 2w), upsample x2, two blocks
  (2w -> w, w), 3x3 conv to the image channels; discriminator trunk 3x3 conv to w, blocks
  w -> w and w -> 2w, 2x2 average pool, blocks 2w -> 2w and 2w -> 4w, 2x2 average pool, flatten
  (4w x S/4 x S/4, the paper's "256 x 32 x 32" at 128 px). The paper's block is "convolutional,
  max pooling, 30 percent dropout and batch normalization"; max pooling inside a block that keeps
  its size is not defined, so a block here is BN-ReLU-conv3x3-BN-ReLU-conv3x3 with a 1x1
  shortcut when channels change (generator), and LeakyReLU-conv3x3 twice without normalisation
  (critic trunk: a per-sample gradient penalty is incompatible with batch norm).
* ``mlp_tanh`` (chosen by name only, e.g. ``vae``'s ``network`` field, never by shape): any data
  flattened, two hidden layers of ``width`` tanh units and Glorot-uniform weights (zero biases);
  at width 200 with a 50-d latent this is the 784-200-200-50 network of Burda, Grosse and
  Salakhutdinov 2015 (Section 5.1 and Appendix C), the reference VAE of the log-likelihood
  literature.
* ``conv3d``: volumes (C, D, H, W) with D = H = W in {16, 32, 64}: the paper's Section 4.2, four
  3D convolutions with 3x3x3 kernels (stride 2), each followed by a normalisation and
  LeakyReLU(0.2). The paper says BatchNorm; the trunk uses a per-sample normalisation instead
  (GroupNorm with one group, i.e. layer norm over C, D, H, W), because the trunk is a critic that
  sees real and fake batches in separate passes, where batch statistics make the two look alike
  (measured: a VAE-GAN discriminator with BatchNorm stayed at loss 1.38 = 2 log 2 for 60 steps),
  and because the gradient penalty is per sample. Generator linear -> 4w x S/16^3, then four
  4x4x4 stride-2 transposed convolutions with BatchNorm and ReLU.

An encoder is the critic's trunk with a different head (2 x latent_dim outputs: mean and log
variance of a diagonal Gaussian, or latent_dim for a deterministic encoder).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gvae_bench.contracts.family import NetworkFamily, OutputActivation, family_for, register_family


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


class UnitIntervalInput(nn.Module):
    """Maps data in [-1, 1] to [0, 1]: x' = (x + 1) / 2, so binarized pixels reach a network as {0, 1}.

    The log-likelihood literature's MLPs read binarized MNIST as {0, 1} (Burda et al. 2015), where
    a background pixel contributes nothing to the first layer. Fed {-1, 1} instead, every pixel
    moves every first-layer tanh unit; measured with the 784-200-200-50 VAE (batch 100, Adam 1e-3):
    the test ELBO after 5 epochs was 10 nats worse (128.1 against 117.8 nats)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1.0) * 0.5


def _activation(kind: OutputActivation) -> nn.Module:
    return nn.Tanh() if kind == "tanh" else nn.Identity()


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


def _dcgan32_generator(shape: tuple[int, ...], latent_dim: int, width: int, out: OutputActivation) -> nn.Module:
    channels = shape[0]
    w = width
    return nn.Sequential(
        nn.Linear(latent_dim, 4 * 4 * 4 * w),
        nn.BatchNorm1d(4 * 4 * 4 * w),
        nn.ReLU(),
        _Reshape(4 * w, 4, 4),
        nn.ConvTranspose2d(4 * w, 2 * w, 5, stride=2, padding=2, output_padding=1),  # 8x8
        nn.BatchNorm2d(2 * w),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * w, w, 5, stride=2, padding=2, output_padding=1),  # 16x16
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.ConvTranspose2d(w, channels, 5, stride=2, padding=2, output_padding=1),  # 32x32
        _activation(out),
    )


def _dcgan_trunk(shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    """``dcgan28`` and ``dcgan32``: three 5x5 stride-2 convolutions, 28 -> 14 -> 7 -> 4 or 32 -> 16 -> 8 -> 4 px."""
    channels = shape[0]
    w = width
    trunk = nn.Sequential(
        nn.Conv2d(channels, w, 5, stride=2, padding=2),  # 14x14 or 16x16
        nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 5, stride=2, padding=2),  # 7x7 or 8x8
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


def _glorot(module: nn.Sequential) -> nn.Sequential:
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


def _mlp_tanh_generator(shape: tuple[int, ...], latent_dim: int, width: int, out: OutputActivation) -> nn.Module:
    return _glorot(nn.Sequential(
        nn.Linear(latent_dim, width), nn.Tanh(),
        nn.Linear(width, width), nn.Tanh(),
        nn.Linear(width, math.prod(shape)),
        _Reshape(*shape),
        _activation(out),
    ))


def _mlp_tanh_trunk(shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    trunk = _glorot(nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(shape), width), nn.Tanh(),
        nn.Linear(width, width), nn.Tanh(),
    ))
    return trunk, width


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a (1x1 when channels change) shortcut.

    ``normalise``: BatchNorm before each activation (generator); without it (critic) the
    activations are LeakyReLU(0.2).
    """

    def __init__(self, in_channels: int, out_channels: int, normalise: bool) -> None:
        super().__init__()

        def act(channels: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(channels), nn.ReLU()] if normalise else [nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(
            *act(in_channels), nn.Conv2d(in_channels, out_channels, 3, padding=1),
            *act(out_channels), nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.shortcut = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.body(x)


def _resnet_generator(shape: tuple[int, ...], latent_dim: int, width: int, out: OutputActivation) -> nn.Module:
    channels = shape[0]
    w, start = width, shape[1] // 4
    return nn.Sequential(
        nn.Linear(latent_dim, 4 * w * start * start),
        _Reshape(4 * w, start, start),
        ResidualBlock(4 * w, 4 * w, True), ResidualBlock(4 * w, 4 * w, True),
        nn.Upsample(scale_factor=2, mode="nearest"),
        ResidualBlock(4 * w, 2 * w, True), ResidualBlock(2 * w, 2 * w, True),
        nn.Upsample(scale_factor=2, mode="nearest"),
        ResidualBlock(2 * w, w, True), ResidualBlock(w, w, True),
        nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, channels, 3, padding=1),
        _activation(out),
    )


def _resnet_trunk(shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    channels, size = shape[0], shape[1]
    w = width
    trunk = nn.Sequential(
        nn.Conv2d(channels, w, 3, padding=1),
        ResidualBlock(w, w, False), ResidualBlock(w, 2 * w, False),
        nn.AvgPool2d(2),
        ResidualBlock(2 * w, 2 * w, False), ResidualBlock(2 * w, 4 * w, False),
        nn.AvgPool2d(2),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
    )
    return trunk, 4 * w * (size // 4) ** 2


def _conv3d_generator(shape: tuple[int, ...], latent_dim: int, width: int, out: OutputActivation) -> nn.Module:
    channels = shape[0]
    w, start = width, shape[1] // 16
    layers: list[nn.Module] = [nn.Linear(latent_dim, 4 * w * start**3), _Reshape(4 * w, start, start, start)]
    widths = [4 * w, 4 * w, 2 * w, w]
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.BatchNorm3d(c_in), nn.ReLU(), nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=1)]
    layers += [nn.BatchNorm3d(w), nn.ReLU(), nn.ConvTranspose3d(w, channels, 4, stride=2, padding=1), _activation(out)]
    return nn.Sequential(*layers)


def _conv3d_trunk(shape: tuple[int, ...], width: int) -> tuple[nn.Module, int]:
    channels, size = shape[0], shape[1]
    w = width
    widths = [channels, w, 2 * w, 4 * w, 4 * w]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(widths, widths[1:]):
        layers += [nn.Conv3d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(1, c_out), nn.LeakyReLU(0.2)]
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), 4 * w * (size // 16) ** 3


for _family in (
    NetworkFamily(name="dcgan28", supports=lambda s: len(s) == 3 and s[1:] == (28, 28) and s[0] in (1, 3),
                  generator=_dcgan28_generator, trunk=_dcgan_trunk, shapes="(1 or 3, 28, 28) images"),
    NetworkFamily(name="dcgan32", supports=lambda s: len(s) == 3 and s[1:] == (32, 32) and s[0] in (1, 3),
                  generator=_dcgan32_generator, trunk=_dcgan_trunk, shapes="(1 or 3, 32, 32) images"),
    NetworkFamily(name="resnet", supports=lambda s: len(s) == 3 and s[1] == s[2] and s[1] in (64, 128),
                  generator=_resnet_generator, trunk=_resnet_trunk, shapes="(C, 64 or 128, same) images"),
    NetworkFamily(name="conv3d", supports=lambda s: len(s) == 4 and s[1] == s[2] == s[3] and s[1] in (16, 32, 64),
                  generator=_conv3d_generator, trunk=_conv3d_trunk, shapes="(C, S, S, S) volumes with S in 16, 32, 64"),
    NetworkFamily(name="mlp2d", supports=lambda s: len(s) == 1, generator=_mlp2d_generator, trunk=_mlp2d_trunk,
                  shapes="(d,) points"),
    # chosen only by name (a model config's ``network`` field), never by the data's shape
    NetworkFamily(name="mlp_tanh", supports=lambda s: True, generator=_mlp_tanh_generator, trunk=_mlp_tanh_trunk,
                  by_shape=False, shapes="any data, flattened"),
):
    register_family(_family)


def build_generator(shape: tuple[int, ...], latent_dim: int, width: int, output: OutputActivation = "tanh",
                    family: str | None = None) -> nn.Module:
    """A generator (or decoder) from R^latent_dim to data of ``shape`` (``family``: by name, else by shape)."""
    return family_for(shape, family).generator(tuple(shape), latent_dim, width, output)


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


def build_encoder(shape: tuple[int, ...], latent_dim: int, width: int, gaussian: bool = True,
                  family: str | None = None) -> TrunkWithHead:
    """The critic's trunk with an encoder head: 2*latent_dim outputs (mean, log variance) when
    ``gaussian``, else latent_dim (a deterministic code). ``family``: by name, else by shape."""
    trunk, features = family_for(shape, family).trunk(tuple(shape), width)
    encoder = TrunkWithHead(trunk, features, 2 * latent_dim if gaussian else latent_dim)
    if family == "mlp_tanh":
        _glorot(nn.Sequential(encoder.head))
    return encoder
