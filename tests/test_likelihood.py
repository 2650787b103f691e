"""The likelihood metrics (recon_error, kl, elbo, iwae_nll, ais_nll) on cases with known answers.

* A decoder that puts probability 1/2 on every pixel has log p(x) = -784 log 2 = -543.43 nats for
  every binary 28x28 image, whatever z is; with q(z|x) equal to the prior every estimator is exact.
* Observation models against torch.distributions.
* A generator that outputs a constant c, scored on data c + N(0, s^2) noise: the held-out choice of
  the Gaussian observation model's sigma is s (the maximum-likelihood value on the grid).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gvae_bench.contracts.benchmark import Benchmark, DataSpec, DataSplits
from gvae_bench.profiles import EvalConfig
from gvae_bench.registry import METRICS, load_plugins
from gvae_bench.contracts.metric import EvalContext
from gvae_bench.metrics.likelihood import SIGMA_GRID, ObservationModel, likelihood_setup
from gvae_bench.contracts.model import GenerativeModel, GeneratorMixin, ModelConfig
from gvae_bench.models.vae import VAE, VAEConfig

load_plugins()
LOG_HALF_784 = 784 * math.log(2)
SMALL = EvalConfig(likelihood_images=40, elbo_samples=3, iwae_k=20, iwae_chunk=7, ais_images=8, ais_chains=3,
                   ais_steps=10, ais_leapfrog=2, heldout_images=10)


class _GreyImages(Benchmark):
    """Random grey 28x28 images in memory; binarized for the likelihood metrics like MNIST."""

    likelihood_data = "binarized"

    @property
    def spec(self) -> DataSpec:
        return DataSpec((1, 28, 28), "image")

    def _load(self) -> DataSplits:
        g = torch.Generator().manual_seed(0)
        return DataSplits(train=torch.rand(64, 1, 28, 28, generator=g) * 2 - 1,
                          test=torch.rand(80, 1, 28, 28, generator=g) * 2 - 1)


class _NoisyConstant(Benchmark):
    """Points c + N(0, s^2 I) in R^16 (continuous data: Gaussian observation model)."""

    noise = 0.1
    value = 0.3

    @property
    def spec(self) -> DataSpec:
        return DataSpec((16,), "points", value_range=None)

    def _load(self) -> DataSplits:
        g = torch.Generator().manual_seed(1)
        make = lambda n: self.value + self.noise * torch.randn(n, 16, generator=g)  # noqa: E731
        return DataSplits(train=make(64), test=make(400))


class _ConstantNet(nn.Module):
    def __init__(self, shape: tuple[int, ...], value: float) -> None:
        super().__init__()
        self.shape, self.value = shape, value
        self.unused = nn.Parameter(torch.zeros(1))  # gives the model a device

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0], *self.shape), self.value) + 0.0 * z.sum(dim=-1).reshape(-1, *[1] * len(self.shape))


class _ConstantGenerator(GeneratorMixin, GenerativeModel):
    """G(z) = c for every z: no encoder, no observation model of its own."""

    def __init__(self, data: DataSpec, value: float) -> None:
        super().__init__(ModelConfig(latent_dim=3, width=1), data)
        self.generator = _ConstantNet(data.shape, value)

    def optimizers(self):
        return {}

    def train_step(self, next_batch):
        return {}


def _context(model: GenerativeModel, benchmark: Benchmark, seed: int = 0) -> EvalContext:
    return EvalContext(model=model.eval(), benchmark=benchmark, splits=benchmark.load(), config=SMALL, seed=seed)


def _score(ctx: EvalContext, *names: str) -> dict[str, float]:
    with torch.no_grad():
        return {name: METRICS.get(name)().compute(ctx).value for name in names}


def _coin_vae() -> VAE:
    """A VAE whose encoder outputs the prior (mu 0, log variance 0) and whose decoder outputs
    logits 0 (p = 1/2) for every input."""
    vae = VAE(VAEConfig(latent_dim=4, width=16, network="mlp_tanh", likelihood="bernoulli"),
              DataSpec((1, 28, 28), "image"))
    for layer in (vae.encoder.head, vae.decoder[4]):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
    return vae


def test_every_estimator_is_exact_for_a_coin_flip_decoder_with_the_prior_as_proposal():
    values = _score(_context(_coin_vae(), _GreyImages(Path("."))), "recon_error", "kl", "elbo", "iwae_nll", "ais_nll")
    assert values["kl"] == pytest.approx(0.0, abs=1e-9)
    for name in ("recon_error", "iwae_nll", "ais_nll"):
        assert values[name] == pytest.approx(LOG_HALF_784, abs=1e-3)
    assert values["elbo"] == pytest.approx(-LOG_HALF_784, abs=1e-3)


def test_ais_from_the_prior_is_exact_for_a_generator_without_encoder():
    model = _ConstantGenerator(DataSpec((1, 28, 28), "image"), value=0.0)  # (0 + 1) / 2 = 1/2
    ctx = _context(model, _GreyImages(Path(".")))
    assert _score(ctx, "ais_nll")["ais_nll"] == pytest.approx(LOG_HALF_784, abs=1e-3)
    assert METRICS.get("iwae_nll")().missing(model, ctx.benchmark)  # no encoder: n/a, not a crash


def test_elbo_is_minus_recon_plus_kl_and_iwae_is_at_least_as_tight():
    torch.manual_seed(0)
    vae = VAE(VAEConfig(latent_dim=4, width=16, network="mlp_tanh", likelihood="bernoulli"),
              DataSpec((1, 28, 28), "image"))
    values = _score(_context(vae, _GreyImages(Path("."))), "recon_error", "kl", "elbo", "iwae_nll")
    assert values["elbo"] == pytest.approx(-(values["recon_error"] + values["kl"]), rel=1e-9)
    assert values["kl"] > 0
    assert values["iwae_nll"] <= -values["elbo"] + 0.05  # L_k >= L_1 (up to Monte Carlo noise)


def test_scored_images_are_one_fixed_binarization_disjoint_from_the_heldout_images():
    benchmark = _GreyImages(Path("."))
    model = _ConstantGenerator(benchmark.spec, value=0.0)
    a, b = likelihood_setup(_context(model, benchmark, seed=0)), likelihood_setup(_context(model, benchmark, seed=5))
    assert torch.equal(a.images, b.images)  # the same for every run seed
    assert set(a.images.unique().tolist()) == {-1.0, 1.0}
    assert len(a.images) == min(SMALL.likelihood_images, 80 - SMALL.heldout_images)


def test_heldout_choice_of_the_gaussian_observation_scale_is_the_data_noise():
    benchmark = _NoisyConstant(Path("."))
    model = _ConstantGenerator(benchmark.spec, value=benchmark.value)
    setup = likelihood_setup(_context(model, benchmark))
    assert setup.observation == ObservationModel("gaussian", benchmark.noise)
    assert benchmark.noise in SIGMA_GRID
    assert len(setup.details["heldout_selection"]) == len(SIGMA_GRID)


@pytest.mark.parametrize("kind, parameter", [("bernoulli", 1e-3), ("gaussian", 0.2)])
def test_observation_models_match_torch_distributions(kind: str, parameter: float):
    g = torch.Generator().manual_seed(3)
    data = DataSpec((1, 4, 4), "image")
    model = _ConstantGenerator(data, value=0.4)
    x = torch.randint(0, 2, (5, 1, 4, 4), generator=g).float() * 2 - 1 if kind == "bernoulli" else torch.randn(5, 1, 4, 4, generator=g)
    z = torch.randn(2, 5, 3, generator=g)
    got = ObservationModel(kind, parameter).log_prob(model, x, z)
    if kind == "bernoulli":
        p = torch.tensor((0.4 + 1) / 2)
        expected = torch.distributions.Bernoulli(probs=p).log_prob((x + 1) / 2).flatten(1).sum(1)
    else:
        expected = torch.distributions.Normal(0.4, parameter).log_prob(x).flatten(1).sum(1)
    assert got.shape == (2, 5)
    assert torch.allclose(got, expected.expand(2, 5), atol=1e-5)
