"""``iwae_nll``: -L_k, the importance-weighted upper bound on the negative log-likelihood per test
image in nats (Burda, Grosse and Salakhutdinov 2015; metrics/iwae.py has the estimator), with
k = ``iwae_k`` samples of the proposal, on the ``likelihood_images`` scored images under the
observation model of metrics/likelihood.py. Table 7 shows it as log p(x) >= -iwae_nll; Table 6 as
the log-likelihood column."""

from __future__ import annotations

from gvae_bench.registry import METRICS
from gvae_bench.contracts.metric import EvalContext, MetricResult
from gvae_bench.metrics.likelihood import EncoderLikelihoodMetric, likelihood_setup, mean_log_likelihood


@METRICS.register("iwae_nll")
class IWAENegativeLogLikelihood(EncoderLikelihoodMetric):
    """Mean -L_k over the scored test images, nats per image (lower is better)."""

    higher_is_better = False
    table = ("table6", "table7")

    def compute(self, ctx: EvalContext) -> MetricResult:
        setup, cfg = likelihood_setup(ctx), ctx.config
        bound = mean_log_likelihood(ctx, setup.images, setup.observation, setup.proposal, k=cfg.iwae_k,
                                    ais_steps=cfg.ais_steps, ais_chains=cfg.ais_chains,
                                    generator=ctx.generator("iwae"))
        first = min(cfg.ais_images, len(bound))  # the images ais_nll scores, for a like-for-like gap
        return MetricResult(float(-bound.mean()), n_generated=0, n_real=len(bound),
                            details={**setup.details, "k": cfg.iwae_k,
                                     f"mean_on_first_{first}_images": float(-bound[:first].mean()),
                                     "std_error": float(bound.std() / len(bound) ** 0.5) if len(bound) > 1 else None})
