"""Mode collapse measured directly: modes covered, share of high-quality samples, KL to uniform.

Mixtures with known centres (``ring8``, ``grid25``): the definitions of VEEGAN (Srivastava et al.
2017, Section 5) as implemented in PacGAN's code (Lin et al. 2018, ``MetricLogger``): each sample
goes to its nearest mode centre; it is *high quality* when its distance to that centre is below
``threshold`` standard deviations of the mode (3 by default); a mode is *covered* when at least
one high-quality sample is assigned to it.

Stacked MNIST (1000 modes): each channel of a sample is read by the harness's MNIST classifier
(argmax, no confidence threshold, as PacGAN's code), the mode is the digit triple, a mode is
covered when at least one sample falls in it, and ``mode_kl`` is KL(p_samples || uniform over the
1000 modes) in nats: sum_m p_m log(p_m * 1000) over modes with p_m > 0 (VEEGAN's Table 2 quantity).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.contracts.metric import (
    NEEDS_CLASSIFIED_MODES, NEEDS_CLASSIFIER, NEEDS_KNOWN_MODES, NEEDS_SAMPLES, EvalContext, Metric, MetricResult,
)
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.registry import METRICS


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


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(p || uniform) in nats for the histogram ``counts`` over all ``len(counts)`` modes:
    sum_m p_m log(p_m K), p = counts / sum(counts), terms with p_m = 0 contributing 0."""
    if counts.ndim != 1 or counts.sum() <= 0:
        raise ValueError("counts must be a 1-D histogram with a positive total")
    p = counts.double() / counts.sum()
    nonzero = p[p > 0]
    return float((nonzero * torch.log(nonzero * len(counts))).sum())


def _classified_modes(ctx: EvalContext, which: str, n: int) -> torch.Tensor:
    """Mode index of each sample: its channels' predicted digits read as a base-10 number."""
    digits = ctx.predicted_classes(which, n)  # (n, channels)
    weights = 10 ** torch.arange(digits.shape[1] - 1, -1, -1)
    return (digits * weights).sum(dim=1)


def _mode_histograms(ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Histograms over the benchmark's modes of ``mode_samples`` (else ``n_samples``) generated
    samples and of as many real test samples (all of them if the test set is smaller)."""
    n = ctx.config.mode_samples or ctx.config.n_samples
    n_modes = ctx.benchmark.n_modes
    fake = torch.bincount(_classified_modes(ctx, "generated", n), minlength=n_modes)
    real = torch.bincount(_classified_modes(ctx, "real", n), minlength=n_modes)
    return fake, real


def _has_mode_classifier(benchmark: Benchmark) -> bool:
    return benchmark.n_modes is not None and benchmark.classifier_dataset is not None


class _MixtureMetric(Metric):
    needs = frozenset({NEEDS_SAMPLES, NEEDS_KNOWN_MODES})
    table = "table_modes"

    def _coverage(self, ctx: EvalContext) -> tuple[ModeCoverage, int]:
        n = ctx.config.n_samples
        samples = ctx.generated(n).flatten(1)
        return mode_coverage(samples, ctx.benchmark.modes, ctx.benchmark.mode_std), n


@METRICS.register("modes")
class ModesCovered(_MixtureMetric):
    """Modes covered: mixtures, >= 1 sample within 3 std; Stacked MNIST, classifier-read triples (VEEGAN / PacGAN)."""

    higher_is_better = True

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        if _has_mode_classifier(benchmark):
            return ModeKL().missing(model, benchmark)
        return super().missing(model, benchmark)

    def compute(self, ctx: EvalContext) -> MetricResult:
        if _has_mode_classifier(ctx.benchmark):
            fake, real = _mode_histograms(ctx)
            return MetricResult(float((fake > 0).sum()), n_generated=int(fake.sum()), n_real=int(real.sum()),
                                reference=float((real > 0).sum()),
                                details={**ctx.classifier_details, "n_modes": len(fake), "reading": "argmax per channel"})
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


@METRICS.register("mode_kl")
class ModeKL(Metric):
    """KL(sample mode histogram || uniform) in nats on Stacked MNIST, modes read by the classifier (VEEGAN Table 2)."""

    higher_is_better = False
    table = "table_modes"
    needs = frozenset({NEEDS_SAMPLES, NEEDS_CLASSIFIER, NEEDS_CLASSIFIED_MODES})

    def compute(self, ctx: EvalContext) -> MetricResult:
        fake, real = _mode_histograms(ctx)
        return MetricResult(kl_to_uniform(fake), n_generated=int(fake.sum()), n_real=int(real.sum()),
                            reference=kl_to_uniform(real),
                            details={**ctx.classifier_details, "n_modes": len(fake), "unit": "nats"})
