"""CT metrics in Hounsfield units: the distance between the HU distributions of real and generated
images, and the share of voxels per tissue class.

Generated and real values are mapped back from [-1, 1] to HU by undoing the benchmark's window
(``to_hu``); values the window clipped stay at its edges, so both distributions live on the
window's HU interval, and every tissue class is read on that interval. A class lying wholly outside
the window cannot be told from its neighbour there (under the abdominal window [-160, 240] HU, air
at -1000 HU comes back as -160, which is fat's range), so ``classes_in_window`` merges it into the
neighbour ("air_or_fat") rather than counting air as fat.
"""

from __future__ import annotations

import torch

from gvae_bench.contracts.metric import NEEDS_HU, NEEDS_SAMPLES, EvalContext, Metric, MetricResult
from gvae_bench.registry import METRICS


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


def classes_in_window(floor: float, ceiling: float) -> dict[str, tuple[float, float]]:
    """``TISSUE_CLASSES`` as images windowed to [floor, ceiling] HU can tell them apart.

    Clipped values sit at the window's edges, so a class wholly below the floor (its upper bound
    <= floor) or wholly above the ceiling (its lower bound > ceiling) is merged into the nearest
    class inside the window, named after both (e.g. ``air_or_fat``); the outermost classes kept
    reach -inf and +inf so every value falls in one class."""
    below = [name for name, (_, high) in TISSUE_CLASSES.items() if high <= floor]
    above = [name for name, (low, _) in TISSUE_CLASSES.items() if low > ceiling]
    inside = [name for name in TISSUE_CLASSES if name not in below and name not in above]
    if not inside:
        raise ValueError(f"no tissue class overlaps the window [{floor:g}, {ceiling:g}] HU")
    classes = {}
    for i, name in enumerate(inside):
        low, high = TISSUE_CLASSES[name]
        parts = [name]
        if i == 0:
            parts, low = below + parts, -float("inf")
        if i == len(inside) - 1:
            parts, high = parts + above, float("inf")
        classes["_or_".join(parts)] = (low, high)
    return classes


def tissue_shares(hu: torch.Tensor, classes: dict[str, tuple[float, float]] = TISSUE_CLASSES) -> dict[str, float]:
    """Share of voxels in each class of ``classes`` (name: [low, high) in HU)."""
    values = hu.flatten()
    return {name: float(((values >= low) & (values < high)).double().mean()) for name, (low, high) in classes.items()}


def total_variation(shares_a: dict[str, float], shares_b: dict[str, float]) -> float:
    """Total variation distance between two class-share histograms over the same classes:
    TV = 1/2 sum_c |a_c - b_c| (0: identical shares, 1: disjoint)."""
    return 0.5 * sum(abs(shares_a[k] - shares_b[k]) for k in shares_a)


class _HUMetric(Metric):
    needs = frozenset({NEEDS_SAMPLES, NEEDS_HU})

    def _hu(self, ctx: EvalContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Generated, real test and real training images in HU (``n_samples`` of each at most). The
        training images give the reference: the score of a model that reproduces them exactly."""
        n = ctx.config.n_samples
        train = ctx.splits.train
        order = torch.randperm(len(train), generator=ctx.generator("hu_reference"))[:n]
        return (ctx.benchmark.to_hu(ctx.generated(n)), ctx.benchmark.to_hu(ctx.real_test(n)),
                ctx.benchmark.to_hu(train[order]))


@METRICS.register("hu_wasserstein")
class HUWasserstein(_HUMetric):
    """Wasserstein-1 distance (HU) between the voxel-value distributions of generated and real CT images."""

    higher_is_better = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        fake, real, train = self._hu(ctx)
        return MetricResult(wasserstein_1d(fake, real), n_generated=len(fake), n_real=len(real),
                            reference=wasserstein_1d(train, real),
                            details={"unit": "HU", "quantiles": 2048, "reference": "real train vs real test"})


@METRICS.register("tissue_tv")
class TissueShareDistance(_HUMetric):
    """Total variation between generated and real shares of air, fat, soft tissue, bone/contrast voxels
    (classes the HU window clips away merged with their neighbour)."""

    higher_is_better = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        fake, real, train = self._hu(ctx)
        floor, ceiling = (float(v) for v in ctx.benchmark.to_hu(torch.tensor([-1.0, 1.0])))
        classes = classes_in_window(floor, ceiling)
        shares_fake, shares_real = tissue_shares(fake, classes), tissue_shares(real, classes)
        shares_train = tissue_shares(train, classes)
        return MetricResult(total_variation(shares_fake, shares_real), n_generated=len(fake), n_real=len(real),
                            reference=total_variation(shares_train, shares_real),
                            details={"generated_shares": shares_fake, "real_shares": shares_real,
                                     "train_shares": shares_train, "reference": "real train vs real test",
                                     "classes_hu": {k: list(v) for k, v in classes.items()},
                                     "window_hu": [floor, ceiling]})
