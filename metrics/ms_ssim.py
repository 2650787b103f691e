"""The registered MS-SSIM metric: mean MS-SSIM over random pairs of generated images or volumes, a diversity score
(lower is more diverse). The definition, the tensor functions and the papers they come from are in
``gvae_bench.functional.ms_ssim``, and the rule that picks one setting per data size in
``gvae_bench.functional.ms_ssim_settings``; this module reads the evaluation context.

Settings per size (``settings_for``, the same rule for image sides and volume sides): the first of

    5 scales, 11 taps, sigma 1.5, the standard betas                          side >= 11 * 2^4 = 176
    3 scales,  7 taps, sigma 1.5, first 3 standard betas renormalised         side >=  7 * 2^2 =  28
    2 scales,  7 taps, sigma 1.5, first 2 renormalised: (0.1356, 0.8644)      side >=  7 * 2^1 =  14
    1 scale,   7 taps, sigma 1.5, beta 1: single-scale SSIM (with the relu)   side >=  7

that fits the smallest spatial side, where S scales of a k-tap window fit a side n iff n >= k * 2^(S-1). Every
2-D benchmark (28 px images and larger) gets 3 scales or more. CT patches: 64^3 and 32^3 get 3 scales, 16^3
gets 2 (16 -> 8 voxels; the coarsest scale has 2^3 valid window positions). A side below 7 admits no whole
window: the metric then reports n/a (``MSSSIM.missing``) instead of computing.
"""

from __future__ import annotations

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.contracts.metric import NEEDS_IMAGES, NEEDS_SAMPLES, EvalContext, Metric, MetricResult
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.functional.ms_ssim import ms_ssim_diversity
from gvae_bench.functional.ms_ssim_settings import (
    SETTINGS_BY_PREFERENCE,
    SMALL_IMAGE_SETTINGS,
    STANDARD_SETTINGS,
    settings_for,
)
from gvae_bench.registry import METRICS

__all__ = [
    "STANDARD_SETTINGS",
    "SMALL_IMAGE_SETTINGS",
    "SETTINGS_BY_PREFERENCE",
    "settings_for",
    "MSSSIM",
]

@METRICS.register("ms_ssim")
class MSSSIM(Metric):
    """Mean MS-SSIM over random pairs of generated images or volumes (diversity: lower is more diverse; Odena et
    al. 2017).

    ``ms_ssim_pairs`` random pairs (i != j) of generated samples, mapped from the data's range to [0, 1]; ``reference``
    is the same over pairs of real test samples. Images (DataSpec kind "image") use 2-D MS-SSIM, volumes (kind
    "volume", e.g. CT patches) the 3-D one (docstring of ``gvae_bench.functional.ms_ssim``), with ``settings_for`` the
    smallest spatial side. n/a for other data, and for images or volumes with a side below 7 (``settings_for``
    gives None).
    """

    higher_is_better = False
    needs = frozenset({NEEDS_SAMPLES, NEEDS_IMAGES})

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        """The base class's answer, with volumes accepted in place of images, and a size requirement added."""
        lacking = set(super().missing(model, benchmark))
        spec = benchmark.spec
        if spec.kind == "volume":
            lacking.discard(NEEDS_IMAGES)
        if spec.kind in ("image", "volume") and settings_for(min(spec.shape[1:])) is None:
            smallest = SETTINGS_BY_PREFERENCE[-1].min_image_size()
            lacking.add(f"every {'pixel' if spec.kind == 'image' else 'voxel'} side >= {smallest} "
                        f"(one whole {smallest}-tap window; the data has {tuple(spec.shape[1:])})")
        return sorted(lacking)

    def compute(self, ctx: EvalContext) -> MetricResult:
        spec = ctx.benchmark.spec
        value_range = spec.value_range or (0.0, 1.0)
        fake = ctx.generated(ctx.config.n_samples).float()
        real = ctx.real_test(ctx.config.n_samples).float()
        pairs = ctx.config.ms_ssim_pairs
        value, settings = ms_ssim_diversity(fake, pairs, ctx.generator("ms_ssim_fake"), value_range)
        reference, _ = ms_ssim_diversity(real, pairs, ctx.generator("ms_ssim_real"), value_range)
        return MetricResult(value, n_generated=len(fake), n_real=len(real), reference=reference,
                            details={"pairs": pairs, "kernel_size": settings.kernel_size, "sigma": settings.sigma,
                                     "scales": len(settings.betas), "betas": list(settings.betas),
                                     "normalize": "relu", "spatial_dims": len(spec.shape) - 1})
