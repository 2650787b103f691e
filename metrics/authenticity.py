"""The registered ``authenticity`` metric: the share of samples that are not training copies (Alaa et al. 2022) in
the benchmark's feature space, a thin adapter over ``gvae_bench.functional.authenticity``."""

from __future__ import annotations

from gvae_bench.contracts.metric import EvalContext, MetricResult
from gvae_bench.functional.authenticity import authentic, authenticity
from gvae_bench.metrics._novelty import NoveltyMetric, NoveltySets
from gvae_bench.registry import METRICS

__all__ = ["Authenticity", "authentic", "authenticity"]


@METRICS.register("authenticity")
class Authenticity(NoveltyMetric):
    """Share of samples that are not training copies (Alaa et al. 2022); the reference is held-out real data's share.

    Feature space: the domain classifier's penultimate features, or a points benchmark's raw
    coordinates (``metrics/_novelty.py``). The training set is every row of the training split the
    model was trained on; the samples are ``n_samples`` generated ones. ``reference``: the same
    share for the test rows P_n that ``copying`` uses (min(``n_samples``, half the test split)): what
    fresh data from the distribution scores, the value a model that neither copies nor underfits
    would reach. Higher is more novel; a copying model falls towards 0, one that makes samples far
    from all data (noise) reaches 1, so read it with ``fid`` and ``precision``.
    """

    def compute(self, ctx: EvalContext) -> MetricResult:
        sets = NoveltySets(ctx)

        def share(which: str) -> float:
            distance, nearest = sets.to_train(which)
            return float(authentic(distance, sets.train_own_distance(nearest)).double().mean())

        return MetricResult(share("generated"), n_generated=len(sets.rows("generated")),
                            n_real=len(sets.rows("test")), reference=share("test"),
                            details={**sets.details(),
                                     "reference": "held-out real test rows P_n in the place of the samples"})
