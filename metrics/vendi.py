"""The registered ``vendi`` metric: the Vendi score (Friedman and Dieng 2023) of the samples in the benchmark's
feature space, a thin adapter over ``gvae_bench.functional.vendi``."""

from __future__ import annotations

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.contracts.metric import EvalContext, MetricResult
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.functional.vendi import vendi_score
from gvae_bench.metrics._novelty import NoveltyMetric, NoveltySets
from gvae_bench.registry import METRICS

__all__ = ["LOW_RANK_POINTS", "Vendi", "vendi_score"]


#: why the points benchmarks get no Vendi score
LOW_RANK_POINTS = ("a feature space of more than 2 dimensions (the cosine kernel on 2-D points has rank <= 2, "
                   "so Vendi <= 2)")


@METRICS.register("vendi")
class Vendi(NoveltyMetric):
    """Vendi score (Friedman and Dieng 2023), cosine kernel on the benchmark's features: effective number of samples.

    ``n_samples`` generated samples against a ``reference`` of as many real test samples (the
    seeded subset the other feature metrics use), in the domain classifier's penultimate features
    (post-ReLU, so every similarity is >= 0), cosine similarity on the uncentred features. Higher is
    more diverse; a collapsed model falls towards 1. The score depends on n, so compare values at
    the same ``n_samples``. Not computed on the 2-D points benchmarks: the cosine kernel of 2-D
    coordinates has rank <= 2, so it could never exceed 2 there (their ``modes`` column counts modes).
    On CT: the cosine similarity of the z-scored radiomic features (``metrics/_novelty.py``; centred,
    so a similarity can be negative, and the kernel matrix is still positive semi-definite with a unit
    diagonal), min(``n_samples``, ``frd_samples``) generated images against the seeded subset of as
    many real test images (all of them when the test split is smaller: compare models at equal counts).
    """

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        lacking = super().missing(model, benchmark)
        if benchmark.classifier_dataset is None and benchmark.spec.kind == "points":
            lacking = sorted([*lacking, LOW_RANK_POINTS])
        return lacking

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.n_samples
        if ctx.benchmark.classifier_dataset is not None:
            fake, real = ctx.features("generated", n), ctx.features("real", n)
            space = {**ctx.classifier_details, "kernel": "cosine similarity, uncentred features"}
        else:  # CT's radiomic space (metrics/_novelty.py)
            sets = NoveltySets(ctx)
            fake, real = sets.rows("generated"), sets.real_rows(n)
            space = {**sets.details(), "kernel": "cosine similarity of the z-scored radiomic features"}
        zero_rows = int((fake.abs().sum(dim=1) == 0).sum())
        return MetricResult(vendi_score(fake), n_generated=len(fake), n_real=len(real), reference=vendi_score(real),
                            details={**space, "generated_zero_feature_rows": zero_rows,
                                     "reference": "real test samples in the place of the generated ones"})
