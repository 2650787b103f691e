"""CT metrics in Hounsfield units: the distance between the HU distributions of real and generated
images, and the share of voxels per tissue class.

Generated and real values are mapped back from [-1, 1] to HU by undoing the benchmark's window
(``to_hu``); values the window clipped stay at its edges, so both distributions live on the
window's HU interval, and every tissue class is read on that interval.
"""

from __future__ import annotations

import torch

from gvae_bench.registry import METRICS
from metrics.base import NEEDS_SAMPLES, EvalContext, Metric, MetricResult

NEEDS_HU = "hounsfield_units"

#: Tissue classes by HU (lower bound inclusive, upper exclusive); the usual radiological ranges.
TISSUE_CLASSES: dict[str, tuple[float, float]] = {
    "air": (-float("inf"), -200.0),
    "fat": (-200.0, -30.0),
    "soft_tissue": (-30.0, 150.0),
    "bone_or_contrast": (150.0, float("inf")),
}


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor, n_quantiles: int = 2048) -> float:
    """Wasserstein-1 distance between the empirical distributions of the values of ``a`` and ``b``:
    W1 = integral over q in (0, 1) of |F_a^-1(q) - F_b^-1(q)| dq, estimated on ``n_quantiles``
    evenly spaced quantiles (exact up to the quantile grid; in the units of the values)."""
    if a.numel() == 0 or b.numel() == 0:
        raise ValueError("both sets need at least one value")
    q = (torch.arange(n_quantiles, dtype=torch.float64) + 0.5) / n_quantiles
    qa = torch.quantile(_subsample(a.double().flatten()), q)
    qb = torch.quantile(_subsample(b.double().flatten()), q)
    return float((qa - qb).abs().mean())


def _subsample(values: torch.Tensor, limit: int = 4_000_000) -> torch.Tensor:
    """torch.quantile takes at most 2^24 values: an evenly strided subset of larger inputs."""
    if values.numel() <= limit:
        return values
    return values[:: values.numel() // limit + 1]


def tissue_shares(hu: torch.Tensor) -> dict[str, float]:
    """Share of voxels in each of ``TISSUE_CLASSES``."""
    values = hu.flatten()
    return {name: float(((values >= low) & (values < high)).double().mean()) for name, (low, high) in TISSUE_CLASSES.items()}


class _HUMetric(Metric):
    needs = frozenset({NEEDS_SAMPLES, NEEDS_HU})

    def missing(self, model, benchmark) -> list[str]:
        lacking = set(super().missing(model, benchmark)) - {NEEDS_HU}
        if not hasattr(benchmark, "to_hu"):
            lacking.add(NEEDS_HU)
        return sorted(lacking)

    def _hu(self, ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor]:
        n = ctx.config.n_samples
        return ctx.benchmark.to_hu(ctx.generated(n)), ctx.benchmark.to_hu(ctx.real_test(n))


@METRICS.register("hu_wasserstein")
class HUWasserstein(_HUMetric):
    """Wasserstein-1 distance (HU) between the voxel-value distributions of generated and real CT images."""

    higher_is_better = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        fake, real = self._hu(ctx)
        return MetricResult(wasserstein_1d(fake, real), n_generated=len(fake), n_real=len(real),
                            details={"unit": "HU", "quantiles": 2048})


@METRICS.register("tissue_tv")
class TissueShareDistance(_HUMetric):
    """Total variation between generated and real shares of air, fat, soft tissue, bone/contrast voxels."""

    higher_is_better = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        fake, real = self._hu(ctx)
        shares_fake, shares_real = tissue_shares(fake), tissue_shares(real)
        distance = 0.5 * sum(abs(shares_fake[k] - shares_real[k]) for k in TISSUE_CLASSES)
        return MetricResult(distance, n_generated=len(fake), n_real=len(real),
                            details={"generated_shares": shares_fake, "real_shares": shares_real,
                                     "classes_hu": {k: list(v) for k, v in TISSUE_CLASSES.items()}})
