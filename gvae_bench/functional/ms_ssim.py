"""Multi-scale structural similarity (MS-SSIM) as pure tensor functions, and the pairwise-diversity score built on it.

The registered metric that scores a benchmark with them is ``gvae_bench.metrics.ms_ssim``; this module registers
nothing.

References
----------
[Wang2003] Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multiscale structural similarity for image quality assessment",
    Proc. 37th Asilomar Conference on Signals, Systems and Computers, 2003, pp. 1398-1402.
    doi:10.1109/ACSSC.2003.1292216
[Wang2004] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality assessment: from error visibility
    to structural similarity", IEEE Trans. Image Processing 13(4):600-612, 2004 (SSIM, K1 = 0.01, K2 = 0.03,
    11x11 Gaussian window with sigma 1.5, statistics over the 'valid' window positions).
[Odena2017] A. Odena, C. Olah, J. Shlens, "Conditional Image Synthesis with Auxiliary Classifier GANs", ICML 2017,
    arXiv:1610.09585 (mean MS-SSIM over random pairs of samples as a diversity score).
[torchmetrics] Lightning-AI/torchmetrics (GitHub), ``torchmetrics.functional.image.ssim``;
    see issue #2718 and pull request #2721 for its padding conventions.
[MONAI] Project-MONAI/MONAI (GitHub, 1.3 and later), ``monai.metrics.MultiScaleSSIMMetric`` and
    ``monai.metrics.regression.compute_ms_ssim`` with ``spatial_dims=3``: the same definition on volumes (3-D
    Gaussian window, valid filtering, 2x2x2 average pooling, relu, weighted product).
[Pinaya2022] W. H. L. Pinaya et al., "Brain Imaging Generation with Latent Diffusion Models", DGM4MICCAI 2022,
    arXiv:2209.07162 (mean MS-SSIM between pairs of synthetic samples as the diversity score of a generator of
    3-D brain MRI).

Definition used here
--------------------
For images a, b (values in [0, L], L = data_range), a normalised Gaussian window w of ``kernel_size`` taps and
standard deviation ``sigma`` (truncated to those taps, applied separably as a row then a column filter, 'valid'
convolution, i.e. no padding, per channel), and C1 = (K1 L)^2, C2 = (K2 L)^2 with K1 = 0.01, K2 = 0.03::

    mu_a = w * a,  mu_b = w * b
    s_a^2 = max(w * a^2 - mu_a^2, 0),  s_b^2 = max(w * b^2 - mu_b^2, 0),  s_ab = w * (a b) - mu_a mu_b
    l  = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1)          (luminance)
    cs = (2 s_ab + C2) / (s_a^2 + s_b^2 + C2)                (contrast * structure)

At scales j = 1..S (scale 1 = full resolution, each next scale = 2x2 average pooling of the previous, odd sizes
floored)::

    CS_j   = max(mean_{c, x, y} cs_j, 0)                          for j < S
    SSIM_S = max(mean_{c, x, y} (l_S * cs_S), 0)
    MS-SSIM(a, b) = SSIM_S^{beta_S} * prod_{j<S} CS_j^{beta_j}

The max(., 0) ("relu" normalisation, as torchmetrics ``normalize="relu"``) keeps the fractional powers defined when
a mean cs or ssim is negative (anti-correlated images); such a factor then contributes 0.

Volumes (3-D)
-------------
[Wang2003] defines MS-SSIM for 2-D images. For volumes a, b of shape (C, D, H, W) the same formulas are used with the
2-D operations replaced by their 3-D counterparts, as in [MONAI] with ``spatial_dims=3``:

* the window is the separable 3-D Gaussian w3(z, y, x) = w(z) w(y) w(x) (the same normalised 1-D window w on each
  axis, so w3 sums to 1), applied as three 1-D 'valid' convolutions (depth, then height, then width) per channel;
* every mean is over channels and valid voxel positions (c, z, y, x);
* the next scale is 2x2x2 average pooling (each side floored), so a scale has 1/8 of the voxels of the one before.

The code path is the same for both: the number of spatial dimensions of the input (2 or 3) picks conv2d/conv3d and
avg_pool2d/avg_pool3d; nothing else differs.

Comparison with torchmetrics 1.9.0 ``multiscale_structural_similarity_index_measure``
-------------------------------------------------------------------------------------
Constants, variance clamping, relu normalisation, 2x2 average pooling, channel/space averaging and the weighted
product are the same. It differs in two ways, so it cannot reproduce this module's default setting exactly:

1. Window size. With ``gaussian_kernel=True`` torchmetrics builds its window with ``int(3.5 * sigma + 0.5) * 2 + 1``
   taps (11 for sigma = 1.5) and uses its ``kernel_size`` argument only for its input-size check; so
   ``kernel_size=7, sigma=1.5`` there is an 11-tap window (noted in torchmetrics issue #2718).
2. Padding at the last scale. torchmetrics reflect-pads each image by (taps - 1) / 2 before filtering. The cs maps
   are then cropped by that pad, which is exactly the 'valid' map used here, but the last-scale SSIM map is
   averaged over the whole padded ('same'-size) map, including positions whose windows reach into the reflected
   border (the crop was removed in torchmetrics PR #2721).

Consequently this implementation equals torchmetrics exactly (up to float rounding) when the window tap count equals
``int(3.5 * sigma + 0.5) * 2 + 1`` and the last-scale SSIM is computed on the valid region; tests/test_ms_ssim.py
checks this against torchmetrics' public per-scale SSIM functions, and against the public MS-SSIM function itself
on image pairs that coincide at the last scale (where the padding choice cannot matter).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gvae_bench.functional.ms_ssim_settings import (
    SETTINGS_BY_PREFERENCE,
    SMALL_IMAGE_SETTINGS,
    STANDARD_MS_SSIM_BETAS,
    STANDARD_SETTINGS,
    MSSSIMSettings,
    renormalised_standard_betas,
    settings_for,
)

__all__ = [
    "STANDARD_MS_SSIM_BETAS",
    "MSSSIMSettings",
    "renormalised_standard_betas",
    "STANDARD_SETTINGS",
    "SMALL_IMAGE_SETTINGS",
    "SETTINGS_BY_PREFERENCE",
    "settings_for",
    "ms_ssim",
    "mean_pairwise_ms_ssim",
    "ms_ssim_diversity",
]

#: Volumes are scored in batches of at most this many values per input (C x D x H x W x pairs, at most 500 pairs):
#: 8 pairs of 64^3, 64 of 32^3, 500 of 16^3. On CPU conv3d's working memory is about 350 bytes per input value
#: (measured: 0.75 GB for 8 pairs of 64^3, 2.7 GB for 32), and smaller batches were also faster per pair.
#: Images are scored in batches of 500 pairs.
_VOLUME_BATCH_VALUES = 2**21

_K1 = 0.01
_K2 = 0.03


def _working_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


_SHAPES = "(N, C, H, W) for images or (N, C, D, H, W) for volumes"


def _check_pair_batch(a: torch.Tensor, b: torch.Tensor, settings: MSSSIMSettings) -> None:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape {_SHAPES}, got {type(t).__name__}.")
        if t.dim() not in (4, 5):
            raise ValueError(f"{name} must have shape {_SHAPES}, got shape {tuple(t.shape)}.")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape {_SHAPES}; got {tuple(a.shape)} and {tuple(b.shape)}.")
    if a.device != b.device:
        raise ValueError(f"a and b must be on the same device; got {a.device} and {b.device}.")
    if not isinstance(settings, MSSSIMSettings):
        raise ValueError(f"settings must be an MSSSIMSettings, got {type(settings).__name__}.")
    sides = tuple(a.shape[2:])
    need = settings.min_image_size()
    if min(sides) < need:
        what, unit = ("images", "px") if len(sides) == 2 else ("volumes", "voxels")
        raise ValueError(
            f"{what} of {' x '.join(str(n) for n in sides)} {unit} are too small for MS-SSIM with "
            f"{settings.num_scales} scales and a {settings.kernel_size}-tap window: each side must be >= "
            f"kernel_size * 2^(scales - 1) = {settings.kernel_size} * 2^{settings.num_scales - 1} = {need} {unit}, "
            f"so that the coarsest scale still holds one whole window. Use fewer scales (shorter betas) or a smaller "
            f"kernel_size."
        )


def _check_range(t: torch.Tensor, name: str, data_range: float) -> None:
    if t.numel() == 0:
        return
    lo, hi = float(t.min()), float(t.max())
    tol = 1e-4 * data_range
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -tol or hi > data_range + tol:
        raise ValueError(
            f"{name} must hold values in [0, data_range] = [0, {data_range:g}]; found values in [{lo:g}, {hi:g}]. "
            f"Rescale the images (e.g. from [-1, 1] to [0, 1]) or set data_range accordingly."
        )


def _filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of each channel of x over its d = x.dim() - 2 spatial axes (d = 2 or 3).

    One 1-D convolution with ``window`` (k taps) per spatial axis, first to last (rows then columns for images;
    depth, rows, columns for volumes), each a depthwise conv2d/conv3d with a kernel of extent k along that axis and
    1 along the others: (B, C, *S) -> (B, C, *(s - k + 1 for s in S)). Equals 'valid' filtering with the outer
    product window w (x) w [(x) w].

    Images are filtered with the batch folded into the channels, (B, C, H, W) -> (1, B*C, H, W), one depthwise
    convolution over B*C maps: the same sums, bit for bit, about 10x faster on CPU than oneDNN's convolution of a
    batch of single-channel images (tests/speed/test_ms_ssim_speed.py). Volumes keep the (B, C) layout (folded,
    conv3d's float32 results differ in the last bits).
    """
    b, c = x.shape[:2]
    d = x.dim() - 2
    k = window.numel()
    conv = F.conv2d if d == 2 else F.conv3d
    fold = d == 2 and b > 0
    groups = b * c if fold else c
    if fold:
        x = x.reshape(1, b * c, *x.shape[2:])
    for axis in range(d):
        shape = [1] * d
        shape[axis] = k
        kernel = window.view(1, 1, *shape).expand(groups, 1, *shape).contiguous()
        x = conv(x, kernel, groups=groups)
    return x.reshape(b, c, *x.shape[2:]) if fold else x


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """Next scale: 2x2 (images) or 2x2x2 (volumes) average pooling, odd sides floored."""
    return F.avg_pool2d(x, kernel_size=2) if x.dim() == 4 else F.avg_pool3d(x, kernel_size=2)


def _ssim_maps(
    a: torch.Tensor, b: torch.Tensor, window: torch.Tensor, c1: float, c2: float, with_luminance: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Valid-region cs map and (optionally) luminance map for a batch of pairs."""
    n = a.shape[0]
    stats = _filter(torch.cat((a, b, a * a, b * b, a * b), dim=0), window)
    mu_a, mu_b, e_aa, e_bb, e_ab = stats.split(n)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = (e_aa - mu_aa).clamp_min(0.0)
    var_b = (e_bb - mu_bb).clamp_min(0.0)
    cov = e_ab - mu_ab
    cs = (2.0 * cov + c2) / (var_a + var_b + c2)
    lum = (2.0 * mu_ab + c1) / (mu_aa + mu_bb + c1) if with_luminance else None
    return cs, lum


def ms_ssim(a: torch.Tensor, b: torch.Tensor, settings: MSSSIMSettings) -> torch.Tensor:
    """Per-pair MS-SSIM [Wang2003] of two image batches or two volume batches.

    Maths (see the module docstring for the full definition): with the valid-filtered SSIM statistics of
    [Wang2004] (K1 = 0.01, K2 = 0.03, Gaussian window of ``settings.kernel_size`` taps and ``settings.sigma``,
    applied separably per channel along each of the 2 or 3 spatial axes) at S = len(betas) scales obtained by
    2x2 (images) or 2x2x2 (volumes) average pooling::

        MS-SSIM(a, b) = max(mean(l_S cs_S), 0)^{beta_S} * prod_{j<S} max(mean(cs_j), 0)^{beta_j}

    where each mean is over channels and valid spatial positions (pixels or voxels). Negative mean cs / ssim values
    are clamped at 0 before the powers (the "relu" normalisation, torchmetrics ``normalize="relu"``), so the
    fractional powers are defined. Identical images give exactly 1 (up to float rounding). For volumes this equals
    MONAI's ``compute_ms_ssim(..., spatial_dims=3, kernel_type="gaussian")`` with the same taps, sigma and weights
    (which computes in float32 and does not clamp variances at 0): tests/test_ms_ssim_3d.py measured at most 2.4e-5
    difference as MONAI ships, and 5e-9 with MONAI run in float64 (its weights stay float32).

    Relation to torchmetrics 1.9.0 ``multiscale_structural_similarity_index_measure(..., normalize="relu",
    reduction="none")``: identical except that torchmetrics derives its window length from sigma
    (``int(3.5 sigma + 0.5) * 2 + 1`` taps, ignoring ``kernel_size``) and averages its last-scale SSIM map over a
    reflect-padded 'same'-size map rather than the valid region; see the module docstring.

    Args:
        a, b: image batches, shape (N, C, H, W), or volume batches, shape (N, C, D, H, W); values in
            [0, settings.data_range] (checked with a 1e-4 * L tolerance); every spatial side >=
            settings.min_image_size(). Any device; float64 inputs are computed in float64, everything else in float32.
        settings: window, scale weights and data range.

    Returns:
        Tensor of shape (N,) on the input device: MS-SSIM of each pair (a[i], b[i]), in [0, 1].

    Raises:
        ValueError: on shape/device mismatch, input that is neither 4-D nor 5-D, a spatial side smaller than
            ``settings.min_image_size()``, or values outside [0, data_range].
    """
    _check_pair_batch(a, b, settings)
    _check_range(a, "a", settings.data_range)
    _check_range(b, "b", settings.data_range)
    dtype = _working_dtype(a) if a.dtype == b.dtype else torch.float32
    x = a.to(dtype)
    y = b.to(dtype)
    window = settings.gaussian_window(dtype=dtype, device=x.device)
    c1 = (_K1 * settings.data_range) ** 2
    c2 = (_K2 * settings.data_range) ** 2

    factors = []
    n_scales = settings.num_scales
    for j in range(n_scales):
        last = j == n_scales - 1
        cs_map, lum_map = _ssim_maps(x, y, window, c1, c2, with_luminance=last)
        if last:
            value = (lum_map * cs_map).flatten(1).mean(dim=1)
        else:
            value = cs_map.flatten(1).mean(dim=1)
            x = _downsample(x)
            y = _downsample(y)
        factors.append(torch.relu(value))
    stacked = torch.stack(factors, dim=0)  # (S, N)
    betas = torch.tensor(settings.betas, dtype=stacked.dtype, device=stacked.device).view(-1, 1)
    return torch.prod(stacked**betas, dim=0)


def _sample_distinct_pairs(
    n_images: int, n_pairs: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """n_pairs ordered pairs (i, j), i != j, uniform over the n(n-1) ordered pairs, drawn on the generator's device.

    i ~ U{0..n-1}; j' ~ U{0..n-2}; j = j' + (j' >= i), which maps j' one-to-one onto {0..n-1} minus {i}.
    """
    device = generator.device
    i = torch.randint(0, n_images, (n_pairs,), generator=generator, device=device)
    j = torch.randint(0, n_images - 1, (n_pairs,), generator=generator, device=device)
    j = j + (j >= i).to(j.dtype)
    return i, j


def mean_pairwise_ms_ssim(
    images: torch.Tensor,
    n_pairs: int,
    settings: MSSSIMSettings,
    generator: torch.Generator,
    batch_size: int = 500,
    *,
    value_range: tuple[float, float] | None = None,
) -> float:
    """Mean MS-SSIM over random pairs of distinct images (or volumes): a sample-diversity score (lower = more diverse).

    Draws ``n_pairs`` ordered index pairs (i, j) with i != j, uniformly over all such pairs and independently
    (with replacement), using ``generator``; evaluates :func:`ms_ssim` on them in batches of ``batch_size`` pairs
    and returns::

        (1 / n_pairs) * sum_p MS-SSIM(u(images[i_p]), u(images[j_p]))

    with u the identity, or, when ``value_range = (lo, hi)`` is given, u(x) = clamp((x - lo) / (hi - lo), 0, 1) * L
    (L = settings.data_range), applied to each batch as it is taken, so no rescaled copy of the whole set is made
    (that matters for volumes: 5000 patches of 64^3 voxels hold 5.2 GB).

    This is the diversity score of Odena et al. 2017 ("Conditional Image Synthesis with Auxiliary Classifier GANs",
    ICML 2017, arXiv:1610.09585), which compare the mean MS-SSIM of random sample pairs with that of real data,
    and the one reported in the GVAE paper's Table 4: lower means more diverse; a collapsed generator
    (identical samples) scores 1. Pinaya et al. 2022 (arXiv:2209.07162) report it for a generator of 3-D brain MRI.

    Args:
        images: (N, C, H, W) images or (N, C, D, H, W) volumes, N >= 2, every spatial side >=
            settings.min_image_size(); values in [0, settings.data_range], or in ``value_range`` when it is given.
        n_pairs: number of pairs (>= 1).
        settings: MS-SSIM settings (window, scale weights, data range).
        generator: torch.Generator for the pair draw (on any device; indices are moved to the images' device).
        batch_size: pairs per ms_ssim call (>= 1); bounds memory.
        value_range: (lo, hi), lo < hi, the range the images live in (e.g. (-1, 1)), mapped to [0, data_range]
            batch by batch as above; None: the images are already in [0, data_range].

    Returns:
        The mean as a Python float (accumulated in float64).

    Raises:
        ValueError: on fewer than 2 images, n_pairs < 1, batch_size < 1, a value_range with lo >= hi, or anything
            :func:`ms_ssim` rejects.
    """
    if not isinstance(images, torch.Tensor) or images.dim() not in (4, 5):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape {_SHAPES}, got {shape}.")
    n = images.shape[0]
    if n < 2:
        raise ValueError(f"mean_pairwise_ms_ssim needs at least 2 images to form a pair of distinct images, got {n}.")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be an integer >= 1, got {n_pairs!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (seeded, for a reproducible draw), got {type(generator).__name__}.")
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"value_range must be (lo, hi) with finite lo < hi, got {value_range!r}.")

    def take(index: torch.Tensor) -> torch.Tensor:
        x = images[index]
        if value_range is None:
            return x
        return ((x - low) / (high - low)).clamp(0.0, 1.0) * settings.data_range

    idx_i, idx_j = _sample_distinct_pairs(n, n_pairs, generator)
    idx_i = idx_i.to(images.device)
    idx_j = idx_j.to(images.device)
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    for start in range(0, n_pairs, batch_size):
        stop = min(start + batch_size, n_pairs)
        values = ms_ssim(take(idx_i[start:stop]), take(idx_j[start:stop]), settings)
        total += values.sum(dtype=torch.float64)
    return float(total.item()) / n_pairs


def ms_ssim_diversity(samples: torch.Tensor, n_pairs: int, generator: torch.Generator,
                      value_range: tuple[float, float]) -> tuple[float, MSSSIMSettings]:
    """The harness's MS-SSIM diversity score of a set of images or volumes, and the setting it used.

    :func:`mean_pairwise_ms_ssim` over ``n_pairs`` random pairs (i != j) drawn with ``generator``, the samples
    mapped from ``value_range`` to [0, 1], with ``settings_for`` the smallest spatial side (the registered
    ``ms_ssim`` metric and ``gvae_bench.score`` both call this): 2-D MS-SSIM for (N, C, H, W) images, 3-D for
    (N, C, D, H, W) volumes (Wang et al. 2003; the diversity reading of Odena et al. 2017: lower is more diverse,
    identical samples score 1). Pairs are scored 500 at a time for images, and for volumes in batches of at most
    ``_VOLUME_BATCH_VALUES`` input values.

    Args:
        samples: (N, C, H, W) or (N, C, D, H, W), N >= 2, every spatial side >= 7.
        n_pairs: pairs to average (>= 1).
        generator: CPU generator of the pair draw.
        value_range: (lo, hi), the range the samples live in (the harness's (-1, 1)).

    Returns:
        (mean MS-SSIM, the ``MSSSIMSettings`` chosen for the size).

    Raises:
        ValueError: a side below 7 (no setting fits), or anything ``mean_pairwise_ms_ssim`` rejects.
    """
    if not isinstance(samples, torch.Tensor) or samples.dim() not in (4, 5):
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(f"samples must be a tensor of shape {_SHAPES}, got {shape}.")
    spatial = tuple(samples.shape[2:])
    settings = settings_for(min(spatial))
    if settings is None:
        raise ValueError(f"MS-SSIM needs every spatial side >= 7; the data has {spatial}.")
    per_pair = math.prod(samples.shape[1:])
    batch_size = 500 if samples.dim() == 4 else max(1, min(500, _VOLUME_BATCH_VALUES // per_pair))
    return mean_pairwise_ms_ssim(samples, n_pairs, settings, generator, batch_size, value_range=value_range), settings
