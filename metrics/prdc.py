"""The registered ``precision``, ``recall`` (Kynkaanniemi et al. 2019), ``density`` and ``coverage`` (Naeem et al.
2020) metrics in the harness's classifier's feature space: thin adapters over ``gvae_bench.functional.prdc``."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from gvae_bench.contracts.metric import (NEEDS_CLASSIFIER, NEEDS_SAMPLES, REAL_TRAIN_VS_TEST, EvalContext, Metric,
                                         MetricResult)
from gvae_bench.functional.prdc import DENSITY_COVERAGE_K, PRECISION_RECALL_K, density_coverage, precision_recall
from gvae_bench.registry import METRICS

__all__ = ["Coverage", "Density", "Precision", "Recall", "density_coverage", "precision_recall"]


class _FeatureSetMetric(Metric, ABC):
    """Shared by the four k-NN metrics: ``n_samples`` generated and real test samples in the
    classifier's feature space. Each pair of metrics (precision and recall, density and coverage)
    comes from one computation, shared through the evaluation context. ``reference`` is the same
    metric with as many real training samples in the place of the generated ones: what a model that
    reproduces the training distribution would score at this sample count."""

    higher_is_better = True
    needs = frozenset({NEEDS_SAMPLES, NEEDS_CLASSIFIER})
    has_reference = True
    k: int
    pair_name: str  # the pair's key in the evaluation context's cache
    part: int  # which of the pair the function returns

    @abstractmethod
    def _pair(self, real: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
        """The pair of metrics of ``other`` against the real features."""

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.n_samples
        real = ctx.features("real", n)

        def pair(which: str) -> tuple[float, float]:
            other = ctx.features(which, n)
            return ctx.cached(f"{self.pair_name}:{which}:{n}", lambda: self._pair(real, other))

        fake = ctx.features("generated", n)
        return MetricResult(pair("generated")[self.part], n_generated=len(fake), n_real=len(real),
                            reference=pair("train")[self.part],
                            details={**ctx.classifier_details, "k": self.k, "reference": REAL_TRAIN_VS_TEST})


class _PrecisionRecall(_FeatureSetMetric):
    k = PRECISION_RECALL_K
    pair_name = "precision_recall"

    def _pair(self, real: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
        return precision_recall(real, other, k=self.k)


class _DensityCoverage(_FeatureSetMetric):
    k = DENSITY_COVERAGE_K
    pair_name = "density_coverage"

    def _pair(self, real: torch.Tensor, other: torch.Tensor) -> tuple[float, float]:
        return density_coverage(real, other, k=self.k)


@METRICS.register("precision")
class Precision(_PrecisionRecall):
    """Share of samples inside the real data's k-NN manifold (k = 3; Kynkaanniemi et al. 2019), classifier features."""

    part = 0


@METRICS.register("recall")
class Recall(_PrecisionRecall):
    """Share of real data inside the samples' k-NN manifold (k = 3; Kynkaanniemi et al. 2019), classifier features."""

    part = 1


@METRICS.register("density")
class Density(_DensityCoverage):
    """Mean count of real k-NN balls holding each sample, over k (k = 5; Naeem et al. 2020), classifier features."""

    part = 0


@METRICS.register("coverage")
class Coverage(_DensityCoverage):
    """Share of real k-NN balls holding at least one sample (k = 5; Naeem et al. 2020), classifier features."""

    part = 1
