"""Modes covered and share of high-quality samples on mixtures with known modes.

Definitions of VEEGAN (Srivastava et al. 2017, Section 5) as implemented in PacGAN's code
(Lin et al. 2018, ``MetricLogger``): each sample goes to its nearest mode centre; it is
*high quality* when its distance to that centre is below ``threshold`` standard deviations of the
mode (3 by default); a mode is *covered* when at least one high-quality sample is assigned to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvae_bench.registry import METRICS
from metrics.base import NEEDS_KNOWN_MODES, NEEDS_SAMPLES, EvalContext, Metric, MetricResult


@dataclass(frozen=True)
class ModeCoverage:
    """``modes_covered``: modes with >= 1 high-quality sample; ``high_quality_fraction``: share of
    samples within the threshold of their nearest mode; ``counts``: high-quality samples per mode."""

    modes_covered: int
    high_quality_fraction: float
    counts: list[int]


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float, threshold: float = 3.0) -> ModeCoverage:
    """Assign ``samples`` (n, d) to the nearest of ``centres`` (k, d) and count as above."""
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples (n, d) and centres (k, d) must share d; got {tuple(samples.shape)} and {tuple(centres.shape)}")
    if std <= 0 or len(samples) == 0:
        raise ValueError("std must be > 0 and samples non-empty")
    distances = torch.cdist(samples.double(), centres.double())
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance < threshold * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    return ModeCoverage(int((counts > 0).sum()), float(good.double().mean()), counts.tolist())


class _MixtureMetric(Metric):
    needs = frozenset({NEEDS_SAMPLES, NEEDS_KNOWN_MODES})
    table = "table_modes"

    def _coverage(self, ctx: EvalContext) -> tuple[ModeCoverage, int]:
        n = ctx.config.n_samples
        samples = ctx.generated(n).flatten(1)
        return mode_coverage(samples, ctx.benchmark.modes, ctx.benchmark.mode_std), n


@METRICS.register("modes")
class ModesCovered(_MixtureMetric):
    """Modes covered: modes with at least one sample within 3 std (VEEGAN / PacGAN protocol)."""

    higher_is_better = True

    def compute(self, ctx: EvalContext) -> MetricResult:
        coverage, n = self._coverage(ctx)
        return MetricResult(float(coverage.modes_covered), n_generated=n, n_real=0,
                            details={"n_modes": len(coverage.counts), "threshold_std": 3.0,
                                     "high_quality_per_mode": coverage.counts})


@METRICS.register("high_quality")
class HighQualityShare(_MixtureMetric):
    """Share of samples (%) within 3 std of their nearest mode (VEEGAN / PacGAN protocol)."""

    higher_is_better = True

    def compute(self, ctx: EvalContext) -> MetricResult:
        coverage, n = self._coverage(ctx)
        return MetricResult(100.0 * coverage.high_quality_fraction, n_generated=n, n_real=0,
                            details={"threshold_std": 3.0, "unit": "percent"})
