"""What the likelihood metrics share: the images they score, the observation model p(x|z), the
proposal q(z|x), and the per-image ELBO terms. The metrics themselves are ``recon_error``,
``kl``, ``elbo`` (their own modules), ``iwae_nll`` (metrics/iwae.py) and ``ais_nll`` (metrics/ais.py).

Images
------
The first ``likelihood_images`` test images. On benchmarks whose ``likelihood_data`` is
"binarized" (MNIST, Fashion-MNIST) they are binarized once with a fixed seed
(``BINARIZATION_SEED``, the same for every run and model): pixel = 1 with probability equal to its
grey level (Salakhutdinov and Murray 2008), the protocol of the log-likelihood literature that the
GVAE paper's Table 7 cites (Burda et al. 2015). Elsewhere the test data is used as it is.

Observation models (log p(x|z) per image, summed over pixels or voxels, in nats)
-------------------------------------------------------------------------------
* ``own``: a model with an observation model of its own (the VAE) is scored with it: its training
  objective's -log p(x|z).
* ``bernoulli`` (binarized data, models without one, e.g. a GAN's generator G): with x' = (x + 1) / 2
  in {0, 1} and p = clamp((G(z) + 1) / 2, eps, 1 - eps),
      log p(x|z) = sum_i x'_i log p_i + (1 - x'_i) log(1 - p_i).
  A tanh generator reaches 0 and 1, so the floor eps is the free parameter.
* ``gaussian`` (continuous data): log p(x|z) = sum_i log N(x_i; G(z)_i, sigma^2), the spherical
  Gaussian with fixed variance that Wu et al. (2017) put around GAN and VAE decoders.
The free parameter (eps or sigma) is chosen on held-out images (the last ``heldout_images`` test
images, never among the scored ones) from ``EPS_GRID`` / ``SIGMA_GRID``: the value with the
highest mean estimate of log p(x) (IWAE with at most ``HELDOUT_IWAE_K`` samples for encoder
models, AIS from the prior with at most ``HELDOUT_AIS_STEPS`` distributions and one chain
otherwise), as Wu et al. choose sigma on validation data.

Proposals q(z|x)
----------------
* a Gaussian encoder's own N(mu(x), diag exp(logvar(x)));
* a deterministic encoder E (alpha-GAN): N(E(x), s^2 I), s chosen on the held-out images from
  ``PROPOSAL_STD_GRID`` together with the observation parameter. Any proposal gives a valid lower
  bound; s only sets how tight it is.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch

from gvae_bench.contracts.benchmark import binarize
from gvae_bench.metrics.ais import ais_log_likelihood
from gvae_bench.contracts.metric import NEEDS_ANY_ENCODER, NEEDS_DECODER, EvalContext, Metric
from gvae_bench.metrics.iwae import iwae_log_likelihood
from gvae_bench.contracts.model import GenerativeModel

BINARIZATION_SEED = 20151
EPS_GRID = (1e-4, 1e-3, 1e-2, 5e-2)
SIGMA_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
PROPOSAL_STD_GRID = (0.03, 0.1, 0.3, 1.0)
IMAGE_BATCH = 100
HELDOUT_IWAE_K, HELDOUT_AIS_STEPS = 50, 20  # the cheap estimates that rank the candidate parameters
_LOG_2PI = math.log(2 * math.pi)


class EncoderLikelihoodMetric(Metric):
    """Base of the metrics that need a decoder and an encoder (Table 6's columns)."""

    table = "table6"
    needs = frozenset({NEEDS_DECODER, NEEDS_ANY_ENCODER})


@dataclass(frozen=True)
class ObservationModel:
    """p(x|z) around a model's decoder; ``parameter`` is eps (bernoulli) or sigma (gaussian)."""

    kind: str
    parameter: float | None = None

    def describe(self) -> str:
        if self.kind == "own":
            return "the model's own observation model"
        if self.kind == "bernoulli":
            return f"Bernoulli around (G(z) + 1) / 2, clamped to [{self.parameter:g}, 1 - {self.parameter:g}]"
        return f"Gaussian N(G(z), {self.parameter:g}^2 I)"

    def log_prob(self, model: GenerativeModel, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for x (n, ...) and z (m, n, d): shape (m, n)."""
        m, n, d = z.shape
        x_rep = x.unsqueeze(0).expand(m, *x.shape).reshape(m * n, *x.shape[1:])
        flat_z = z.reshape(m * n, d)
        if self.kind == "own":
            return model.observation_log_prob(x_rep, flat_z).reshape(m, n)
        mean = model.decode(flat_z)
        if self.kind == "bernoulli":
            p = ((mean + 1.0) / 2.0).clamp(self.parameter, 1.0 - self.parameter)
            target = (x_rep + 1.0) / 2.0
            log_p = target * p.log() + (1.0 - target) * (1.0 - p).log()
        else:
            sigma = self.parameter
            log_p = -0.5 * ((x_rep - mean) / sigma).pow(2) - math.log(sigma) - 0.5 * _LOG_2PI
        return log_p.flatten(1).sum(dim=1).reshape(m, n)


@dataclass(frozen=True)
class Proposal:
    """q(z|x): the encoder's Gaussian (``point_std`` None) or N(E(x), point_std^2 I)."""

    point_std: float | None = None

    def __call__(self, model: GenerativeModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.point_std is None:
            return model.encode(x)
        code = model.encode_point(x)
        return code, torch.full_like(code, 2 * math.log(self.point_std))

    def describe(self) -> str:
        if self.point_std is None:
            return "the encoder's q(z|x)"
        return f"N(E(x), {self.point_std:g}^2 I) around the deterministic encoder"


@dataclass
class LikelihoodSetup:
    """The scored images and the chosen observation model and proposal of one evaluation."""

    images: torch.Tensor
    observation: ObservationModel
    proposal: Proposal | None
    details: dict[str, Any]


def _has_encoder(model: GenerativeModel) -> bool:
    return model.can_encode or model.can_encode_point


def _prepare(ctx: EvalContext, images: torch.Tensor, purpose: str) -> torch.Tensor:
    images = images.to(ctx.model.device)
    if ctx.benchmark.likelihood_data == "binarized":
        images = binarize(images, torch.Generator().manual_seed(BINARIZATION_SEED + (purpose == "heldout")))
    return images


def mean_log_likelihood(ctx: EvalContext, x: torch.Tensor, observation: ObservationModel,
                        proposal: Proposal | None, k: int, ais_steps: int, ais_chains: int,
                        generator: torch.Generator, progress: str | None = None) -> torch.Tensor:
    """Per-image estimate of log p(x): the IWAE bound L_k with the proposal, or AIS from the prior
    for a model without an encoder."""
    model, cfg = ctx.model, ctx.config
    out = []
    for start in range(0, len(x), IMAGE_BATCH):
        batch = x[start : start + IMAGE_BATCH]
        def log_px_z(x_: torch.Tensor, z_: torch.Tensor) -> torch.Tensor:
            return observation.log_prob(model, x_, z_)
        if proposal is not None:
            out.append(iwae_log_likelihood(batch, lambda b: proposal(model, b), log_px_z, k=k,
                                           chunk=cfg.iwae_chunk, generator=generator))
        else:
            out.append(ais_log_likelihood(batch, log_px_z, model.config.latent_dim, n_steps=ais_steps,
                                          n_chains=ais_chains, n_leapfrog=cfg.ais_leapfrog, generator=generator,
                                          progress=progress))
    return torch.cat(out)


def _choose(ctx: EvalContext, heldout: torch.Tensor) -> tuple[ObservationModel, Proposal | None, dict[str, Any]]:
    model, cfg = ctx.model, ctx.config
    if model.has_observation_model:
        observations = [ObservationModel("own")]
    elif ctx.benchmark.likelihood_data == "binarized":
        observations = [ObservationModel("bernoulli", eps) for eps in EPS_GRID]
    else:
        observations = [ObservationModel("gaussian", sigma) for sigma in SIGMA_GRID]
    if model.can_encode:
        proposals: list[Proposal | None] = [Proposal()]
    elif model.can_encode_point:
        proposals = [Proposal(s) for s in PROPOSAL_STD_GRID]
    else:
        proposals = [None]
    candidates = list(itertools.product(observations, proposals))
    if len(candidates) == 1:
        return (*candidates[0], {})
    scores = {}
    for observation, proposal in candidates:
        estimate = mean_log_likelihood(ctx, heldout, observation, proposal, k=min(cfg.iwae_k, HELDOUT_IWAE_K),
                                       ais_steps=min(cfg.ais_steps, HELDOUT_AIS_STEPS), ais_chains=1,
                                       generator=ctx.generator("likelihood-heldout"))
        scores[(observation, proposal)] = float(estimate.mean())
    best = max(scores, key=lambda key: scores[key])
    table = [{"observation": o.describe(), "proposal": p.describe() if p else "prior (AIS)", "mean_log_p": round(v, 3)}
             for (o, p), v in scores.items()]
    return (*best, {"heldout_selection": table, "heldout_images": len(heldout)})


def likelihood_setup(ctx: EvalContext) -> LikelihoodSetup:
    """The scored images, observation model and proposal, decided once per evaluation."""

    def build() -> LikelihoodSetup:
        test, cfg = ctx.splits.test, ctx.config
        n_heldout = min(cfg.heldout_images, len(test) // 2)
        needs_choice = not ctx.model.has_observation_model or ctx.model.can_encode_point
        limit = len(test) - n_heldout if needs_choice else len(test)
        images = _prepare(ctx, test[: min(cfg.likelihood_images, limit)], "scored")
        with torch.no_grad():
            heldout = _prepare(ctx, test[len(test) - n_heldout :], "heldout")
            observation, proposal, details = _choose(ctx, heldout)
        data = ("test images binarized once (seed %d), Bernoulli protocol" % BINARIZATION_SEED
                if ctx.benchmark.likelihood_data == "binarized" else "test data as it is")
        details.update(observation_model=observation.describe(), data=data,
                       proposal=proposal.describe() if proposal else None, unit="nats per image")
        return LikelihoodSetup(images, observation, proposal, details)

    return ctx.cached("likelihood_setup", build)


def elbo_terms(ctx: EvalContext) -> dict[str, torch.Tensor]:
    """Per-image reconstruction term E_q[-log p(x|z)] (``elbo_samples`` draws of q(z|x)) and
    KL(q(z|x) || N(0, I)) in closed form (Kingma and Welling 2013, Appendix B), in nats."""

    def build() -> dict[str, torch.Tensor]:
        setup, model, cfg = likelihood_setup(ctx), ctx.model, ctx.config
        generator = ctx.generator("elbo")
        recon, kl = [], []
        for start in range(0, len(setup.images), IMAGE_BATCH):
            x = setup.images[start : start + IMAGE_BATCH]
            mu, logvar = setup.proposal(model, x)
            eps = torch.randn((cfg.elbo_samples, *mu.shape), generator=generator).to(mu.device)
            z = mu + (0.5 * logvar).exp() * eps
            recon.append(-setup.observation.log_prob(model, x, z).double().mean(dim=0))
            kl.append((0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(dim=1).double())
        return {"recon": torch.cat(recon), "kl": torch.cat(kl)}

    return ctx.cached("elbo_terms", build)
