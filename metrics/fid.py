"""The registered ``fid`` metric: the Frechet distance (Heusel et al. 2017) in the harness's own classifier's feature
space, a thin adapter over ``gvae_bench.functional.fid``, where the closed form and its computation are defined."""

from __future__ import annotations

from gvae_bench.contracts.metric import (NEEDS_CLASSIFIER, NEEDS_SAMPLES, REAL_TRAIN_VS_TEST, EvalContext, Metric,
                                         MetricResult, NotApplicable)
from gvae_bench.functional.fid import frechet_distance, too_few_for_covariance
from gvae_bench.registry import METRICS

__all__ = ["ClassifierFID", "frechet_distance"]


@METRICS.register("fid")
class ClassifierFID(Metric):
    """Frechet distance in the harness's own classifier's feature space (not Inception FID; Heusel et al. 2017).

    ``n_samples`` generated against as many real test samples. ``reference`` is the same distance
    between as many real training samples and the test samples: the floor a model that reproduces
    the training distribution would reach at this sample count (FID is biased upwards at finite n).
    n/a (``NotApplicable``) when there are no more samples than feature dimensions
    (``too_few_for_covariance``: the covariance would be singular).
    """

    higher_is_better = False
    needs = frozenset({NEEDS_SAMPLES, NEEDS_CLASSIFIER})
    has_reference = True

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.n_samples
        real, fake, train = ctx.features("real", n), ctx.features("generated", n), ctx.features("train", n)
        problem = too_few_for_covariance(min(len(fake), len(train)), len(real), real.shape[1])
        if problem is not None:
            raise NotApplicable(problem)
        return MetricResult(frechet_distance(fake, real), n_generated=len(fake), n_real=len(real),
                            reference=frechet_distance(train, real),
                            details={**ctx.classifier_details, "reference": REAL_TRAIN_VS_TEST, "features": real.shape[1]})
