"""The registered MS-SSIM metric: mean MS-SSIM over random pairs of generated images or volumes, a diversity score
(lower is more diverse). The definition, the tensor functions and the papers they come from are in
``gvae_bench.metrics._ms_ssim_functional``; this module picks one setting per data size and reads the
evaluation context.

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

import math

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.contracts.metric import NEEDS_IMAGES, NEEDS_SAMPLES, EvalContext, Metric, MetricResult
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.metrics._ms_ssim_functional import (
    STANDARD_MS_SSIM_BETAS,
    MSSSIMSettings,
    mean_pairwise_ms_ssim,
    renormalised_standard_betas,
)
from gvae_bench.registry import METRICS

__all__ = [
    "STANDARD_SETTINGS",
    "SMALL_IMAGE_SETTINGS",
    "SETTINGS_BY_PREFERENCE",
    "settings_for",
    "MSSSIM",
]

#: The standard setting (5 scales, 11 taps, sigma 1.5) for images large enough to take it.
STANDARD_SETTINGS = MSSSIMSettings(kernel_size=11, sigma=1.5, betas=STANDARD_MS_SSIM_BETAS)
#: The small-image setting (3 scales, 7 taps, sigma 1.5, first three weights renormalised).
SMALL_IMAGE_SETTINGS = MSSSIMSettings()
#: Every setting ``settings_for`` may pick, in order of preference: the standard one, then 3, 2 and 1 scales of the
#: 7-tap, sigma-1.5 window with the first standard weights renormalised to sum to 1. Their smallest sides are
#: 176, 28, 14 and 7.
SETTINGS_BY_PREFERENCE: tuple[MSSSIMSettings, ...] = (
    STANDARD_SETTINGS,
    SMALL_IMAGE_SETTINGS,
    MSSSIMSettings(betas=renormalised_standard_betas(2)),
    MSSSIMSettings(betas=renormalised_standard_betas(1)),
)

#: Volumes are scored in batches of at most this many values per input (C x D x H x W x pairs, at most 500 pairs):
#: 8 pairs of 64^3, 64 of 32^3, 500 of 16^3. On CPU conv3d's working memory is about 350 bytes per input value
#: (measured: 0.75 GB for 8 pairs of 64^3, 2.7 GB for 32), and smaller batches were also faster per pair.
#: Images are scored in batches of 500 pairs.
_VOLUME_BATCH_VALUES = 2**21


def settings_for(side: int) -> MSSSIMSettings | None:
    """The one MS-SSIM setting used for every model on images or volumes whose smallest spatial side is ``side``.

    The first of ``SETTINGS_BY_PREFERENCE`` that fits, i.e. with ``side >= kernel_size * 2^(scales - 1)``: the
    standard setting (5 scales, 11 taps) from 176 px; else 3 scales of a 7-tap window from 28 (every 2-D benchmark
    here); else 2 scales from 14 (16^3 CT patches); else one scale, plain SSIM, from 7. The same rule for image
    sides and volume sides: 64^3 and 32^3 patches get 3 scales, 16^3 gets 2. None below 7: no whole 7-tap window
    fits, and the metric is n/a.
    """
    for settings in SETTINGS_BY_PREFERENCE:
        if side >= settings.min_image_size():
            return settings
    return None


@METRICS.register("ms_ssim")
class MSSSIM(Metric):
    """Mean MS-SSIM over random pairs of generated images or volumes (diversity: lower is more diverse; Odena et
    al. 2017).

    ``ms_ssim_pairs`` random pairs (i != j) of generated samples, mapped from the data's range to [0, 1]; ``reference``
    is the same over pairs of real test samples. Images (DataSpec kind "image") use 2-D MS-SSIM, volumes (kind
    "volume", e.g. CT patches) the 3-D one (docstring of ``_ms_ssim_functional``), with ``settings_for`` the
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
        low, high = spec.value_range or (0.0, 1.0)
        spatial = tuple(spec.shape[1:])
        settings = settings_for(min(spatial))
        if settings is None:  # missing() reports this as n/a; kept for direct callers
            raise ValueError(f"MS-SSIM needs every spatial side >= 7; the data has {spatial}.")
        n_images, pairs = ctx.config.n_samples, ctx.config.ms_ssim_pairs
        batch_size = 500 if spec.kind == "image" else max(1, min(500, _VOLUME_BATCH_VALUES // math.prod(spec.shape)))

        fake = ctx.generated(n_images).float()
        real = ctx.real_test(n_images).float()
        value = mean_pairwise_ms_ssim(fake, pairs, settings, ctx.generator("ms_ssim_fake"), batch_size,
                                      value_range=(low, high))
        reference = mean_pairwise_ms_ssim(real, pairs, settings, ctx.generator("ms_ssim_real"), batch_size,
                                          value_range=(low, high))
        return MetricResult(value, n_generated=len(fake), n_real=len(real), reference=reference,
                            details={"pairs": pairs, "kernel_size": settings.kernel_size, "sigma": settings.sigma,
                                     "scales": len(settings.betas), "betas": list(settings.betas),
                                     "normalize": "relu", "spatial_dims": len(spatial)})
