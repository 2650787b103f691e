"""``ais_nll``: minus the AIS estimate of log p(x) per test image in nats (Wu et al. 2017;
metrics/ais.py has the estimator), for every model with a decoder, encoder or not. Chains start
from the proposal q(z|x) where the model has an encoder ("AIS+encoder" of Wu et al.), else from
the prior; ``ais_chains`` chains of ``ais_steps`` intermediate distributions with ``ais_leapfrog``
leapfrog steps each, on the first ``ais_images`` scored images (metrics/likelihood.py). Its
expectation is an upper bound on -log p(x) that tightens as ``ais_steps`` grows: a short chain
gives a loose (large) value, which the details state."""

from __future__ import annotations

import torch

from gvae_bench.registry import METRICS
from gvae_bench.metrics.ais import ais_log_likelihood
from gvae_bench.contracts.metric import NEEDS_DECODER, EvalContext, Metric, MetricResult
from gvae_bench.metrics.likelihood import IMAGE_BATCH, likelihood_setup


@METRICS.register("ais_nll")
class AISNegativeLogLikelihood(Metric):
    """Mean -log p_hat(x) from AIS over the first ``ais_images`` scored images (lower is better)."""

    higher_is_better = False
    table = "table7"
    needs = frozenset({NEEDS_DECODER})

    def compute(self, ctx: EvalContext) -> MetricResult:
        setup, cfg, model = likelihood_setup(ctx), ctx.config, ctx.model
        images = setup.images[: cfg.ais_images]
        generator = ctx.generator("ais")
        estimates = []
        for start in range(0, len(images), IMAGE_BATCH):
            x = images[start : start + IMAGE_BATCH]
            initial = setup.proposal(model, x) if setup.proposal is not None else None
            estimates.append(ais_log_likelihood(
                x, lambda x_, z_: setup.observation.log_prob(model, x_, z_), model.config.latent_dim,
                n_steps=cfg.ais_steps, n_chains=cfg.ais_chains, n_leapfrog=cfg.ais_leapfrog, initial=initial,
                generator=generator, progress=f"AIS {start + 1}-{start + len(x)} of {len(images)}"))
        log_p = torch.cat(estimates)
        return MetricResult(float(-log_p.mean()), n_generated=0, n_real=len(log_p),
                            details={**setup.details, "chains": cfg.ais_chains, "steps": cfg.ais_steps,
                                     "leapfrog": cfg.ais_leapfrog,
                                     "initial": "q(z|x)" if setup.proposal is not None else "prior N(0, I)"})
