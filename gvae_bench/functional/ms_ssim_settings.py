"""The settings of MS-SSIM (``gvae_bench.functional.ms_ssim``): the window, the scale weights, and the rule that
picks one setting per image or volume size.

Settings per size (``settings_for``, the same rule for image sides and volume sides): the first of

    5 scales, 11 taps, sigma 1.5, the standard betas                          side >= 11 * 2^4 = 176
    3 scales,  7 taps, sigma 1.5, first 3 standard betas renormalised         side >=  7 * 2^2 =  28
    2 scales,  7 taps, sigma 1.5, first 2 renormalised: (0.1356, 0.8644)      side >=  7 * 2^1 =  14
    1 scale,   7 taps, sigma 1.5, beta 1: single-scale SSIM (with the relu)   side >=  7

that fits the smallest spatial side, where S scales of a k-tap window fit a side n iff n >= k * 2^(S-1).

Reference: Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image quality assessment",
Asilomar 2003 (the 5-scale weights and the 11-tap, sigma-1.5 window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["STANDARD_MS_SSIM_BETAS", "MSSSIMSettings", "renormalised_standard_betas", "STANDARD_SETTINGS",
           "SMALL_IMAGE_SETTINGS", "SETTINGS_BY_PREFERENCE", "settings_for"]

#: Weights of the standard 5-scale MS-SSIM [Wang2003], finest scale first.
STANDARD_MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

def renormalised_standard_betas(n_scales: int) -> tuple[float, ...]:
    """The first ``n_scales`` standard weights (``STANDARD_MS_SSIM_BETAS``) divided by their sum, so they sum to 1."""
    first = STANDARD_MS_SSIM_BETAS[:n_scales]
    total = sum(first)
    return tuple(b / total for b in first)


@dataclass(frozen=True)
class MSSSIMSettings:
    """MS-SSIM parameters; the defaults are the setting chosen for 28 x 28 px images.

    The standard MS-SSIM [Wang2003] uses 5 scales, an 11-tap Gaussian window with sigma 1.5 and weights
    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333). With 'valid' filtering the coarsest scale must still hold one whole
    window, so 5 scales of an 11-tap window need images of at least 11 * 2^4 = 176 px per side. (torchmetrics'
    check, ``H // (S-1)^2 > kernel_size - 1``, also rejects anything below 176 px for that setting, though its
    message says "larger than 160".) 28 px images cannot take that.

    Chosen setting for 28 px images: 3 scales (28, 14, 7 px) with a 7-tap Gaussian window, sigma 1.5 (the window is
    the sigma-1.5 Gaussian truncated to +-3 px and renormalised), and the first three standard weights renormalised
    to sum to 1::

        betas = (0.0448, 0.2856, 0.3001) / 0.6305 = (0.07105..., 0.45297..., 0.47597...)

    At 28 px the valid maps are 22 x 22, 8 x 8 and 1 x 1 (the last scale is a single 7 x 7 window).

    Attributes:
        kernel_size: number of Gaussian window taps per axis; odd, >= 3.
        sigma: standard deviation of the Gaussian window in pixels; > 0.
        betas: one positive exponent per scale, finest first; the number of scales is ``len(betas)``.
        data_range: L, the value range of the images ([0, L]); sets C1 = (0.01 L)^2 and C2 = (0.03 L)^2.
    """

    kernel_size: int = 7
    sigma: float = 1.5
    betas: tuple[float, ...] = renormalised_standard_betas(3)
    data_range: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.kernel_size, bool) or not isinstance(self.kernel_size, int):
            raise ValueError(f"kernel_size must be an odd integer >= 3, got {self.kernel_size!r}.")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd integer >= 3 (the window needs a centre tap), got {self.kernel_size}.")
        sigma = float(self.sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive finite number, got {self.sigma!r}.")
        try:
            betas = tuple(float(b) for b in self.betas)
        except TypeError:
            raise ValueError(f"betas must be a non-empty sequence of positive numbers, got {self.betas!r}.") from None
        if len(betas) == 0:
            raise ValueError("betas must be non-empty: one positive weight per scale, finest scale first.")
        if not all(math.isfinite(b) and b > 0 for b in betas):
            raise ValueError(f"every beta must be a positive finite number, got {betas}.")
        data_range = float(self.data_range)
        if not (math.isfinite(data_range) and data_range > 0):
            raise ValueError(f"data_range must be a positive finite number (e.g. 1.0 for [0, 1] images), got {self.data_range!r}.")
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "data_range", data_range)

    @property
    def num_scales(self) -> int:
        """Number of scales S = len(betas)."""
        return len(self.betas)

    def min_image_size(self) -> int:
        """Smallest image (or volume) side that fits: ``kernel_size * 2^(S - 1)``.

        After S - 1 rounds of 2x2 (2x2x2 for volumes) average pooling, which floors odd sizes, a side of H becomes
        floor(H / 2^(S-1)), and the valid filtering at the coarsest scale needs that to be >= kernel_size;
        this holds exactly when H >= kernel_size * 2^(S-1). Every spatial side must satisfy it.
        28 px for the default setting.
        """
        return self.kernel_size * 2 ** (self.num_scales - 1)

    def gaussian_window(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """The 1-D window: w_t proportional to exp(-t^2 / (2 sigma^2)) for t = -(k-1)/2 .. (k-1)/2, summing to 1."""
        half = (self.kernel_size - 1) / 2
        t = torch.linspace(-half, half, self.kernel_size, dtype=torch.float64)
        w = torch.exp(-(t**2) / (2.0 * self.sigma**2))
        return (w / w.sum()).to(dtype=dtype, device=device)


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
