"""``recon_error``: the reconstruction term of the ELBO, E_{q(z|x)}[-log p(x|z)], per test image in
nats (Kingma and Welling 2013, eq. 3), under the observation model and proposal of
metrics/likelihood.py, averaged over ``elbo_samples`` draws of q(z|x) and ``likelihood_images``
images. The paper's Table 6 "reconstruction error" column."""

from __future__ import annotations

from gvae_bench.registry import METRICS
from gvae_bench.contracts.metric import EvalContext, MetricResult
from gvae_bench.metrics.likelihood import EncoderLikelihoodMetric, elbo_terms, likelihood_setup


@METRICS.register("recon_error")
class ReconstructionError(EncoderLikelihoodMetric):
    """Mean E_q[-log p(x|z)] over the scored test images, nats per image."""

    higher_is_better = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        setup, recon = likelihood_setup(ctx), elbo_terms(ctx)["recon"]
        return MetricResult(float(recon.mean()), n_generated=0, n_real=len(recon),
                            details={**setup.details, "elbo_samples": ctx.config.elbo_samples})
