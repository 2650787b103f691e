"""The contract between the runner and a model plugin.

A model states what it can do through its capability flags (``can_sample``, ``can_encode``,
``can_reconstruct``) and a metric states what it needs, so the evaluator answers "n/a" without
special cases. A model file holds its losses and its update rule (``train_step``), nothing else:
networks come from ``models.networks`` and the loop, logging and checkpoints from
``gvae_bench.execution.training``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.config import ConfigBase

BatchSource = Callable[[], torch.Tensor]


class GaussianEncoderMixin:
    """For models whose ``self.encoder`` outputs (mean, log variance) of q(z|x) side by side."""

    can_encode: ClassVar[bool] = True
    encoder: nn.Module

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar


class GeneratorMixin:
    """For models with a generator G: z ~ N(0, I) of ``latent_dim`` -> data; ``decode`` is G and
    ``sample(n)`` is G(z) for n prior draws."""

    can_decode: ClassVar[bool] = True
    generator: nn.Module

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def sample(self, n: int) -> torch.Tensor:
        return self.decode(torch.randn(n, self.config.latent_dim, device=self.device))


@dataclass
class ModelConfig(ConfigBase):
    """Fields every model has. ``width`` is the base channel count of the network family."""

    latent_dim: int = 128
    width: int = 64

    def validate(self) -> None:
        self.require(positive=("latent_dim", "width"))

    def for_data(self, data: DataSpec) -> "ModelConfig":
        """This config with every data-dependent default ("auto") decided for ``data``."""
        return self


def adam(params, lr: float, betas: tuple[float, float], eps: float = 1e-8) -> torch.optim.Adam:
    """Adam, the optimiser of every model here (the paper's Table 3 and all its baselines)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)


class GenerativeModel(nn.Module, ABC):
    """Base class of every model plugin.

    Subclasses set ``Config`` (a ``ModelConfig`` dataclass) and the capability flags, build their
    networks in ``__init__`` and implement ``train_step`` and ``sample``.
    """

    Config: ClassVar[type[ModelConfig]] = ModelConfig
    registered_name: ClassVar[str]
    can_sample: ClassVar[bool] = True
    can_encode: ClassVar[bool] = False
    can_encode_point: ClassVar[bool] = False
    can_reconstruct: ClassVar[bool] = False
    can_decode: ClassVar[bool] = False
    has_observation_model: ClassVar[bool] = False  # True: observation_log_prob gives log p(x|z)

    def __init__(self, config: ModelConfig, data: DataSpec) -> None:
        super().__init__()
        self.config = config
        self.data = data

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by name (saved in and restored from checkpoints)."""

    @abstractmethod
    def train_step(self, next_batch: BatchSource) -> dict[str, float]:
        """One update of the model (for GANs: one generator update and its critic updates).

        ``next_batch()`` returns the next training batch on the model's device; a model may draw
        several per step. Returns the losses of this step as plain floats, by name.
        """

    @abstractmethod
    def sample(self, n: int) -> torch.Tensor:
        """``n`` samples from the model, shaped like the data and in its value range."""

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) (models with ``can_encode``)."""
        raise TypeError(f"{type(self).__name__} has no encoder")

    def encode_point(self, x: torch.Tensor) -> torch.Tensor:
        """A deterministic code E(x) (models with ``can_encode_point``, e.g. alpha-GAN)."""
        raise TypeError(f"{type(self).__name__} has no deterministic encoder")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's (decoder's) output for latents ``z`` (..., latent_dim), in the data's
        value range: the mean of p(x|z) (models with ``can_decode``)."""
        raise TypeError(f"{type(self).__name__} has no decoder")

    def observation_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor | None:
        """log p(x|z) per sample under the model's own observation model, or None for a model
        that has none (a GAN's generator); the likelihood metrics then put one around ``decode``."""
        return None

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``x`` in the data's value range (models with ``can_reconstruct``)."""
        raise TypeError(f"{type(self).__name__} does not reconstruct")

    def output_activation(self) -> str:
        """tanh for data in a bounded range ([-1, 1]), identity for unbounded data."""
        return "tanh" if self.data.value_range is not None else "identity"

    def sample_in_batches(self, n: int, batch_size: int = 1000) -> torch.Tensor:
        """``n`` samples drawn ``batch_size`` at a time without gradients, returned on the CPU."""
        was_training = self.training
        self.eval()
        chunks = []
        with torch.no_grad():
            for start in range(0, n, batch_size):
                chunks.append(self.sample(min(batch_size, n - start)).float().cpu())
        self.train(was_training)
        return torch.cat(chunks)
