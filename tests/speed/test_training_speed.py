"""Training step of every model: the harness against a plain PyTorch loop, side by side.

The harness path is what ``execute_run`` runs: the registered model's ``train_step``, fed by
``gvae_bench.execution.training.BatchStream`` (the data tensor in memory on the run's device, one shuffled
epoch after another). The plain loop below is written by hand in this file, the way one would
write it without the harness: the same networks (built by ``models.networks`` from the same
config), the same Adam settings, the same batch size and the same loss maths, with the data as
one in-memory tensor and a random index batch per draw. ``test_plain_loop_is_the_same_computation``
checks that claim: from equal weights, batches and RNG state, two steps of each give the same
weights.

Settings: the quick profile for MNIST (dcgan28 family, width 32; batch 64, or 50 for wgan_gp and
gvae), as resolved by the harness itself. Figures: training images drawn per second (batch size
times batches drawn per step; wgan_gp and gvae draw one per critic step), and the ratio harness
images/s / plain images/s from the times of the two in the same round, their steps alternating one
by one (``interleaved_rounds`` in conftest.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gvae_bench.execution.runs import ResolvedRun, RunSpec, resolve
from gvae_bench.execution.training import BatchStream
from gvae_bench.models.networks import build_critic, build_encoder, build_generator

from .conftest import REPO, Ratio, SpeedData, SpeedReport, interleaved_rounds, median, synchronise

MODELS = ["vae", "wgan_gp", "gvae", "vae_gan", "alpha_gan"]
ROUNDS = 8  # rounds per model; in each, harness and plain steps alternate one by one, the same number of each
ROUND_SECONDS = 1.0  # target seconds of one contender's steps per round; steps per round follow from a warm-up step
WARMUP_STEPS = 3


def _resolved(model: str) -> ResolvedRun:
    return resolve(RunSpec(model, "mnist", "quick", 0, REPO.parent / "shared" / "data", REPO / "results"))


# ------------------------------------------------------------------------------ the plain loops
#
# Each plain model holds its networks and optimisers as plain attributes and has one method,
# ``step(batches)``, taking the step's training batches (one, or one per critic update).


def _adam(params: Any, cfg: Any) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=getattr(cfg, "eps", 1e-8))


def _kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=1)


def _sample_z(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def _gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1.0).pow(2).mean()


class PlainVAE:
    """Negative ELBO with a Bernoulli decoder (logits) and a Gaussian encoder, one Adam."""

    batches_per_step = 1

    def __init__(self, cfg: Any, shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.encoder = build_encoder(shape, cfg.latent_dim, cfg.width, gaussian=True).to(device)
        self.decoder = build_generator(shape, cfg.latent_dim, cfg.width, output="identity").to(device)
        self.opt = _adam(list(self.encoder.parameters()) + list(self.decoder.parameters()), cfg)

    def step(self, batches: list[torch.Tensor]) -> None:
        (x,) = batches
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        logits = self.decoder(_sample_z(mu, logvar))
        nll = F.binary_cross_entropy_with_logits(logits, (x + 1.0) / 2.0, reduction="none").flatten(1).sum(dim=1)
        loss = (nll + self.cfg.kl_weight * _kl(mu, logvar)).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class PlainWGANGP:
    """n_critic critic updates with the gradient penalty, then one generator update."""

    def __init__(self, cfg: Any, shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.batches_per_step = cfg.n_critic
        self.generator = build_generator(shape, cfg.latent_dim, cfg.width, output="tanh").to(device)
        self.critic = build_critic(shape, cfg.width).to(device)
        self.opt_g = _adam(self.generator.parameters(), cfg)
        self.opt_d = _adam(self.critic.parameters(), cfg)

    def step(self, batches: list[torch.Tensor]) -> None:
        G, D, cfg = self.generator, self.critic, self.cfg
        D.requires_grad_(True)
        for real in batches:
            with torch.no_grad():
                fake = G(torch.randn(real.shape[0], cfg.latent_dim, device=real.device))
            d_real, d_fake = D(real).mean(), D(fake).mean()
            loss_d = d_fake - d_real + cfg.gp_weight * _gradient_penalty(D, real, fake)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        D.requires_grad_(False)
        loss_g = -D(G(torch.randn(real.shape[0], cfg.latent_dim, device=real.device))).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        D.requires_grad_(True)


class PlainGVAE:
    """WGAN-GP critic on reconstructions and prior samples; encoder + generator on adversarial + L1 + KL."""

    def __init__(self, cfg: Any, shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.batches_per_step = cfg.n_critic
        self.encoder = build_encoder(shape, cfg.latent_dim, cfg.width, gaussian=True).to(device)
        self.generator = build_generator(shape, cfg.latent_dim, cfg.width, output="tanh").to(device)
        self.critic = build_critic(shape, cfg.width).to(device)
        self.opt_eg = _adam(list(self.encoder.parameters()) + list(self.generator.parameters()), cfg)
        self.opt_d = _adam(self.critic.parameters(), cfg)

    def step(self, batches: list[torch.Tensor]) -> None:
        E, G, D, cfg = self.encoder, self.generator, self.critic, self.cfg
        D.requires_grad_(True)
        for x in batches:
            n = x.shape[0]
            with torch.no_grad():
                reconstruction = G(_sample_z(*E(x).chunk(2, dim=1)))
                sample = G(torch.randn(n, cfg.latent_dim, device=x.device))
            d_real = D(x).mean()
            d_fake = 0.5 * (D(reconstruction).mean() + D(sample).mean())
            half = n // 2
            mixed = torch.cat([reconstruction[:half], sample[half:]])
            loss_d = d_fake - d_real + cfg.gp_weight * _gradient_penalty(D, x, mixed)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
        D.requires_grad_(False)
        mu, logvar = E(x).chunk(2, dim=1)
        reconstruction = G(_sample_z(mu, logvar))
        sample = G(torch.randn(x.shape[0], cfg.latent_dim, device=x.device))
        adversarial = -0.5 * (D(reconstruction).mean() + D(sample).mean())
        l1 = (x - reconstruction).abs().flatten(1).mean(dim=1).mean()
        loss = cfg.adversarial_weight * adversarial + cfg.recon_weight * l1 + cfg.kl_weight * _kl(mu, logvar).mean()
        self.opt_eg.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_eg.step()
        D.requires_grad_(True)


class PlainVAEGAN:
    """Discriminator on the GAN loss; encoder on KL + feature distance; decoder on gamma * feature distance + GAN."""

    batches_per_step = 1

    def __init__(self, cfg: Any, shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.encoder = build_encoder(shape, cfg.latent_dim, cfg.width, gaussian=True).to(device)
        self.generator = build_generator(shape, cfg.latent_dim, cfg.width, output="tanh").to(device)
        self.discriminator = build_critic(shape, cfg.width).to(device)
        self.opt_e = _adam(self.encoder.parameters(), cfg)
        self.opt_g = _adam(self.generator.parameters(), cfg)
        self.opt_d = _adam(self.discriminator.parameters(), cfg)

    def step(self, batches: list[torch.Tensor]) -> None:
        E, G, D, cfg = self.encoder, self.generator, self.discriminator, self.cfg
        (x,) = batches
        mu, logvar = E(x).chunk(2, dim=1)
        reconstruction = G(_sample_z(mu, logvar))
        sample = G(torch.randn_like(mu))
        loss_d = F.softplus(-D(x)).mean() + 0.5 * (F.softplus(D(reconstruction.detach())).mean()
                                                   + F.softplus(D(sample.detach())).mean())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        D.requires_grad_(False)
        features_real = D.trunk(x).detach()
        features_rec = D.trunk(reconstruction)
        feature_distance = 0.5 * (features_real - features_rec).pow(2).sum(dim=1).mean()
        gan = 0.5 * (F.softplus(-D.head(features_rec)).mean() + F.softplus(-D(sample)).mean())
        loss_e = cfg.kl_weight * _kl(mu, logvar).mean() + feature_distance
        loss_g = cfg.gamma * feature_distance + gan
        self.opt_e.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        encoder_params = list(E.parameters())
        encoder_grads = torch.autograd.grad(loss_e, encoder_params, retain_graph=True)
        loss_g.backward()
        for parameter, grad in zip(encoder_params, encoder_grads):
            parameter.grad = grad
        self.opt_e.step()
        self.opt_g.step()
        D.requires_grad_(True)


class PlainAlphaGAN:
    """Encoder + generator on L1 + image and code GAN terms; then both discriminators."""

    batches_per_step = 1

    def __init__(self, cfg: Any, shape: tuple[int, ...], device: torch.device) -> None:
        self.cfg = cfg
        self.encoder = build_encoder(shape, cfg.latent_dim, cfg.width, gaussian=False).to(device)
        self.generator = build_generator(shape, cfg.latent_dim, cfg.width, output="tanh").to(device)
        self.discriminator = build_critic(shape, cfg.width).to(device)
        self.code_discriminator = build_critic((cfg.latent_dim,), cfg.code_discriminator_width).to(device)
        self.opt_eg = _adam(list(self.encoder.parameters()) + list(self.generator.parameters()), cfg)
        self.opt_d = _adam(self.discriminator.parameters(), cfg)
        self.opt_c = _adam(self.code_discriminator.parameters(), cfg)

    def step(self, batches: list[torch.Tensor]) -> None:
        E, G, D, C, cfg = self.encoder, self.generator, self.discriminator, self.code_discriminator, self.cfg
        (x,) = batches
        z_enc = E(x)
        z_prior = torch.randn_like(z_enc)
        reconstruction = G(z_enc)
        sample = G(z_prior)
        D.requires_grad_(False)
        C.requires_grad_(False)
        l1 = (x - reconstruction).abs().flatten(1).mean(dim=1).mean()
        adversarial = 0.5 * (F.softplus(-D(reconstruction)).mean() + F.softplus(-D(sample)).mean())
        code = F.softplus(-C(z_enc)).mean()
        loss = cfg.recon_weight * l1 + cfg.adversarial_weight * adversarial + cfg.code_weight * code
        self.opt_eg.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_eg.step()
        D.requires_grad_(True)
        C.requires_grad_(True)
        loss_d = F.softplus(-D(x)).mean() + 0.5 * (F.softplus(D(reconstruction.detach())).mean()
                                                   + F.softplus(D(sample.detach())).mean())
        loss_c = F.softplus(-C(z_prior)).mean() + F.softplus(C(z_enc.detach())).mean()
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_c.zero_grad(set_to_none=True)
        (loss_d + loss_c).backward()
        self.opt_d.step()
        self.opt_c.step()


PLAIN: dict[str, Callable[[Any, tuple[int, ...], torch.device], Any]] = {
    "vae": PlainVAE, "wgan_gp": PlainWGANGP, "gvae": PlainGVAE, "vae_gan": PlainVAEGAN, "alpha_gan": PlainAlphaGAN,
}

# the plain model's attribute for each of the harness model's networks
NETWORKS = {
    "vae": {"encoder": "encoder", "decoder": "decoder"},
    "wgan_gp": {"generator": "generator", "critic": "critic"},
    "gvae": {"encoder": "encoder", "generator": "generator", "critic": "critic"},
    "vae_gan": {"encoder": "encoder", "generator": "generator", "discriminator": "discriminator"},
    "alpha_gan": {"encoder": "encoder", "generator": "generator", "discriminator": "discriminator",
                  "code_discriminator": "code_discriminator"},
}


# ------------------------------------------------------------------------------ set-up


@dataclass
class Contest:
    """A harness model with its batch stream, and a plain model with its data and index generator."""

    name: str
    batch_size: int
    harness_model: Any
    stream: BatchStream
    plain: Any
    data: torch.Tensor
    index_generator: torch.Generator

    def harness_steps(self, steps: int) -> None:
        for _ in range(steps):
            self.harness_model.train_step(self.stream)

    def plain_steps(self, steps: int) -> None:
        data, generator, n, b = self.data, self.index_generator, len(self.data), self.batch_size
        for _ in range(steps):
            batches = [data[torch.randint(n, (b,), generator=generator, device=data.device)]
                       for _ in range(self.plain.batches_per_step)]
            self.plain.step(batches)


def _contest(name: str, train: torch.Tensor, device: torch.device) -> Contest:
    resolved = _resolved(name)
    spec, cfg, batch = resolved.benchmark.spec, resolved.model_config, resolved.train.batch_size
    torch.manual_seed(0)
    model = resolved.model_cls(cfg, spec).to(device)
    model.train()
    data = train.to(device)
    torch.manual_seed(0)
    plain = PLAIN[name](cfg, tuple(spec.shape), device)
    transform = resolved.benchmark.train_batch_transform()
    assert transform is None, "the plain loop has no batch transform; the quick MNIST profile uses none"
    generator = torch.Generator(device=device).manual_seed(0)
    return Contest(name, batch, model, BatchStream(data, batch, 0, transform), plain, data, generator)


# ------------------------------------------------------------------------------ the checks


class _RecordingStream:
    """A batch source that hands out the batches of a ``BatchStream`` and keeps them."""

    def __init__(self, stream: BatchStream) -> None:
        self.stream = stream
        self.batches: list[torch.Tensor] = []

    def __call__(self) -> torch.Tensor:
        batch = self.stream()
        self.batches.append(batch)
        return batch


@pytest.mark.parametrize("name", MODELS)
def test_plain_loop_is_the_same_computation(name: str, speed_data: SpeedData, speed_report: SpeedReport) -> None:
    """From the same weights, batches and RNG state, two steps of the plain loop give the weights
    two harness steps give: the comparison is between two codings of one computation."""
    contest = _contest(name, speed_data.train[:2000], speed_report.device)
    for harness_attr, plain_attr in NETWORKS[name].items():
        getattr(contest.plain, plain_attr).load_state_dict(getattr(contest.harness_model, harness_attr).state_dict())
    recorder = _RecordingStream(contest.stream)
    torch.manual_seed(123)
    contest.harness_model.train_step(recorder)
    contest.harness_model.train_step(recorder)
    per_step = contest.plain.batches_per_step
    assert len(recorder.batches) == 2 * per_step  # images per step are counted right
    torch.manual_seed(123)
    contest.plain.step(recorder.batches[:per_step])
    contest.plain.step(recorder.batches[per_step:])
    for harness_attr, plain_attr in NETWORKS[name].items():
        ours = dict(getattr(contest.harness_model, harness_attr).named_parameters())
        theirs = dict(getattr(contest.plain, plain_attr).named_parameters())
        for key, value in ours.items():
            torch.testing.assert_close(theirs[key], value, rtol=1e-5, atol=1e-6, msg=f"{name}.{harness_attr}.{key}")


@pytest.mark.parametrize("name", MODELS)
def test_training_step_speed(name: str, benchmark: Any, speed_data: SpeedData, speed_report: SpeedReport) -> None:
    """Harness images/s against plain-loop images/s, their steps alternating one by one."""
    device = speed_report.device
    contest = _contest(name, speed_data.train, device)
    contest.harness_steps(WARMUP_STEPS)
    contest.plain_steps(WARMUP_STEPS)
    synchronise(device)
    began = time.perf_counter()
    contest.harness_steps(1)
    synchronise(device)
    steps = max(1, round(ROUND_SECONDS / (time.perf_counter() - began)))

    times = interleaved_rounds(benchmark, {"harness": lambda: contest.harness_steps(1),
                                           "plain": lambda: contest.plain_steps(1)}, ROUNDS, device, slices=steps)
    images = steps * contest.batch_size * contest.plain.batches_per_step
    clocks = ("cpu", "wall")
    row = {"model": name, "batch": contest.batch_size, "batches_per_step": contest.plain.batches_per_step,
           "steps": steps, "rounds": ROUNDS,
           "harness_ips": {c: images / median(times["harness"].of(c)) for c in clocks},
           "plain_ips": {c: images / median(times["plain"].of(c)) for c in clocks},
           # plain seconds / harness seconds per round = harness images/s / plain images/s
           "ratio": {c: Ratio.of(times, "plain", "harness", c) for c in clocks}}
    speed_report.training.append(row)
    benchmark.extra_info.update({"steps_per_round": steps, "images_per_round": images,
                                 **{f"{who}_seconds_{c}": times[who].of(c) for who in times for c in clocks}})
