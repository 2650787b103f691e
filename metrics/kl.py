"""``kl``: KL(q(z|x) || N(0, I)) per test image in nats, in closed form
(Kingma and Welling 2013, Appendix B): 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), averaged
over the ``likelihood_images`` scored images (metrics/likelihood.py). The paper's Table 6 "KL
divergence" column."""

from __future__ import annotations

from gvae_bench.registry import METRICS
from gvae_bench.contracts.metric import EvalContext, MetricResult
from gvae_bench.metrics.likelihood import EncoderLikelihoodMetric, elbo_terms, likelihood_setup


@METRICS.register("kl")
class KLToPrior(EncoderLikelihoodMetric):
    """Mean KL of the proposal q(z|x) from the prior, nats per image."""

    higher_is_better = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        setup, kl = likelihood_setup(ctx), elbo_terms(ctx)["kl"]
        return MetricResult(float(kl.mean()), n_generated=0, n_real=len(kl), details=setup.details)
