"""The registered ``kid`` metric: the subset-averaged unbiased cubic-kernel MMD^2 (Binkowski et al. 2018) in the
harness's classifier's feature space, a thin adapter over ``gvae_bench.functional.kid``."""

from __future__ import annotations

from gvae_bench.contracts.metric import (NEEDS_CLASSIFIER, NEEDS_SAMPLES, REAL_TRAIN_VS_TEST, EvalContext, Metric,
                                         MetricResult)
from gvae_bench.functional.kid import KID_SUBSET_SIZE, KID_SUBSETS, kernel_inception_distance
from gvae_bench.registry import METRICS

__all__ = ["ClassifierKID", "kernel_inception_distance"]


@METRICS.register("kid")
class ClassifierKID(Metric):
    """Unbiased cubic-kernel MMD^2 in the harness's classifier's feature space (not Inception KID; Binkowski et al. 2018).

    100 subsets of up to 1000 of the ``n_samples`` generated and real test samples; the value is
    the mean over subsets, ``details.std`` their spread. ``reference`` is the same estimate, with
    the same subsets, between as many real training samples and the test samples (about 0: the
    estimator is unbiased).
    """

    higher_is_better = False
    needs = frozenset({NEEDS_SAMPLES, NEEDS_CLASSIFIER})
    has_reference = True

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.n_samples
        real, fake, train = ctx.features("real", n), ctx.features("generated", n), ctx.features("train", n)
        mean, std = kernel_inception_distance(fake, real, n_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE,
                                              generator=ctx.generator("kid"))
        reference, _ = kernel_inception_distance(train, real, n_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE,
                                                 generator=ctx.generator("kid"))
        return MetricResult(mean, n_generated=len(fake), n_real=len(real), reference=reference,
                            details={**ctx.classifier_details, "std": std, "n_subsets": KID_SUBSETS,
                                     "subset_size": min(KID_SUBSET_SIZE, len(fake), len(real)),
                                     "reference": REAL_TRAIN_VS_TEST})
