"""The one training loop: models learn, runs resume exactly, divergence is recorded."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.benchmarks.torchvision_images import MNIST
from gvae_bench.profiles import TrainConfig
from gvae_bench.execution.training import CHECKPOINT_FILE, seed_everything, train
from gvae_bench.models.vae import VAE, VAEConfig
from gvae_bench.models.wgan_gp import WGANGP, WGANGPConfig

IMAGE = DataSpec(shape=(1, 28, 28), kind="image")


@pytest.fixture(scope="module")
def mnist_subset(data_root):
    return MNIST(data_root, MNIST.Config(train_limit=2000)).load()


def _mean(rows, key, first: bool, k: int = 5):
    values = [row[key] for row in rows]
    part = values[:k] if first else values[-k:]
    return sum(part) / len(part)


def test_vae_loss_falls_on_mnist(mnist_subset, tmp_path):
    seed_everything(0)
    model = VAE(VAEConfig(width=8, latent_dim=8), IMAGE)
    outcome = train(model, mnist_subset.train, TrainConfig(steps=150, batch_size=32, checkpoint_every=150, log_every=1),
                    tmp_path, seed=0)
    assert outcome.status == "finished"
    first, last = _mean(outcome.loss_log, "loss", True), _mean(outcome.loss_log, "loss", False)
    assert last < 0.6 * first, (first, last)  # negative ELBO per image, nats: ~540 -> ~200 here


def test_resume_continues_exactly_as_an_uninterrupted_run(mnist_subset, tmp_path):
    data = mnist_subset.train[:256]
    config = dict(batch_size=16, checkpoint_every=3, log_every=1)

    def fresh():
        seed_everything(7)
        return WGANGP(WGANGPConfig(width=4, latent_dim=8, n_critic=2), IMAGE)

    straight = fresh()
    train(straight, data, TrainConfig(steps=8, **config), tmp_path / "straight", seed=7)

    interrupted = fresh()
    train(interrupted, data, TrainConfig(steps=5, **config), tmp_path / "resumed", seed=7)  # checkpoint at 3 and 5
    torch.manual_seed(999)  # whatever happened in between must not matter
    resumed = fresh()
    outcome = train(resumed, data, TrainConfig(steps=8, **config), tmp_path / "resumed", seed=7)
    assert outcome.resumed_from == 5
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert [r["step"] for r in outcome.loss_log] == list(range(1, 9))


@dataclass
class _ExplodingConfig(VAEConfig):
    explode_at: int = 3


class _ExplodingVAE(VAE):
    """A VAE whose loss becomes NaN at a given step: the loop must stop and say so."""

    Config = _ExplodingConfig
    registered_name = "exploding_vae"

    def __init__(self, config, data):
        super().__init__(config, data)
        self.calls = 0

    def train_step(self, next_batch):
        self.calls += 1
        losses = super().train_step(next_batch)
        if self.calls >= self.config.explode_at:
            losses["loss"] = float("nan")
        return losses


def test_non_finite_loss_ends_the_run_as_diverged(mnist_subset, tmp_path):
    model = _ExplodingVAE(_ExplodingConfig(width=4, latent_dim=4, explode_at=3), IMAGE)
    outcome = train(model, mnist_subset.train, TrainConfig(steps=10, batch_size=8, checkpoint_every=5), tmp_path, seed=0)
    assert outcome.status == "diverged" and outcome.steps_done == 3
    assert "step 3" in outcome.reason and "loss=nan" in outcome.reason
    assert not (tmp_path / CHECKPOINT_FILE).exists()  # nothing after the blow-up was saved as good
