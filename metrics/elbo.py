"""``elbo``: the evidence lower bound per test image in nats (Kingma and Welling 2013, eq. 3),

    ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || N(0, I))  <=  log p(x),

i.e. -(recon_error + kl) of the same images and draws (metrics/likelihood.py). Equal in
expectation to the IWAE bound with k = 1. The paper's Table 6 "ELBO" column."""

from __future__ import annotations

from gvae_bench.registry import METRICS
from gvae_bench.contracts.metric import EvalContext, MetricResult
from gvae_bench.metrics.likelihood import EncoderLikelihoodMetric, elbo_terms, likelihood_setup


@METRICS.register("elbo")
class ELBO(EncoderLikelihoodMetric):
    """Mean ELBO over the scored test images, nats per image (higher is better)."""

    higher_is_better = True

    def compute(self, ctx: EvalContext) -> MetricResult:
        setup, terms = likelihood_setup(ctx), elbo_terms(ctx)
        elbo = -(terms["recon"] + terms["kl"])
        return MetricResult(float(elbo.mean()), n_generated=0, n_real=len(elbo),
                            details={**setup.details, "elbo_samples": ctx.config.elbo_samples})
