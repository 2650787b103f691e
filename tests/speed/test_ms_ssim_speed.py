"""MS-SSIM pairs per second: ``metrics.ms_ssim.ms_ssim`` against torchmetrics on the same pairs.

The pairs are those the ``ms_ssim`` metric scores under the quick profile: 2000 random pairs of
distinct images among 5000 (here real MNIST test images mapped to [0, 1]), in batches of 500
pairs (``mean_pairwise_ms_ssim``'s default). Both functions get the same batches, with the
settings where they coincide (as in tests/test_ms_ssim.py): 3 scales with the renormalised
standard weights, a 7-tap Gaussian window with sigma 0.9 (torchmetrics sizes its window from sigma,
``int(3.5 sigma + 0.5) * 2 + 1`` = 7 taps), data range 1, ``normalize="relu"``, per-pair output.
(torchmetrics still reflect-pads its last-scale SSIM map where ours uses the valid region, so
the values differ; the work is the same up to that padding.) The harness's production setting
for 28 px (7 taps, sigma 1.5, which torchmetrics cannot express) is timed as well: it has the
same number of taps, so the same cost is expected.

``test_image_filter_is_the_unfolded_filter_bit_for_bit`` guards the speed-up of
``metrics.ms_ssim._filter`` (images filtered with the batch folded into the channels): its output
must equal, bit for bit, the straightforward per-channel filtering it replaced.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as tm_ms_ssim

from gvae_bench.functional.ms_ssim import MSSSIMSettings, _filter, _sample_distinct_pairs, ms_ssim
from gvae_bench.metrics.ms_ssim import SMALL_IMAGE_SETTINGS

from .conftest import Ratio, SpeedData, SpeedReport, interleaved_rounds, median

PAIRS = 2000  # EvalConfig.ms_ssim_pairs of the quick profile
IMAGES = 5000  # EvalConfig.n_samples of the quick profile
BATCH = 500  # mean_pairwise_ms_ssim's batch_size
ROUNDS = 5
COMMON = MSSSIMSettings(kernel_size=7, sigma=0.9)


def test_ms_ssim_against_torchmetrics(benchmark: Any, speed_data: SpeedData, speed_report: SpeedReport) -> None:
    device = speed_report.device
    images = ((speed_data.test[:IMAGES] + 1.0) / 2.0).clamp(0.0, 1.0).to(device)
    i, j = _sample_distinct_pairs(len(images), PAIRS, torch.Generator().manual_seed(0))
    batches = [(images[i[k : k + BATCH].to(device)], images[j[k : k + BATCH].to(device)])
               for k in range(0, PAIRS, BATCH)]

    def ours(settings: MSSSIMSettings) -> list[torch.Tensor]:
        return [ms_ssim(a, b, settings) for a, b in batches]

    def theirs() -> list[torch.Tensor]:
        return [tm_ms_ssim(a, b, kernel_size=COMMON.kernel_size, sigma=COMMON.sigma, betas=COMMON.betas,
                           data_range=COMMON.data_range, normalize="relu", reduction="none") for a, b in batches]

    assert torch.cat(ours(COMMON)).shape == torch.cat(theirs()).shape == (PAIRS,)  # also a warm-up
    times = interleaved_rounds(benchmark, {"ours": lambda: ours(COMMON), "torchmetrics": theirs,
                                           "ours_production": lambda: ours(SMALL_IMAGE_SETTINGS)}, ROUNDS, device)
    clocks = ("cpu", "wall")
    production = SMALL_IMAGE_SETTINGS
    row = {"pairs": PAIRS, "size": images.shape[-1], "batch": BATCH, "rounds": ROUNDS,
           "ours_pps": {c: PAIRS / median(times["ours"].of(c)) for c in clocks},
           "tm_pps": {c: PAIRS / median(times["torchmetrics"].of(c)) for c in clocks},
           "ours_production_pps": {c: PAIRS / median(times["ours_production"].of(c)) for c in clocks},
           # torchmetrics seconds / our seconds per round = our pairs/s / torchmetrics' pairs/s
           "ratio": {c: Ratio.of(times, "torchmetrics", "ours", c) for c in clocks},
           "setting": f"{COMMON.kernel_size} taps, sigma {COMMON.sigma}, {COMMON.num_scales} scales",
           "production_setting": f"{production.kernel_size} taps, sigma {production.sigma}, "
                                 f"{production.num_scales} scales"}
    speed_report.ms_ssim.append(row)
    benchmark.extra_info.update({f"{who}_seconds_{c}": times[who].of(c) for who in times for c in clocks})


def _unfolded_filter(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of (B, C, H, W) per channel, the batch left as it is (the form before the fold)."""
    c, k = x.shape[1], window.numel()
    rows = window.view(1, 1, k, 1).expand(c, 1, k, 1).contiguous()
    cols = window.view(1, 1, 1, k).expand(c, 1, 1, k).contiguous()
    return F.conv2d(F.conv2d(x, rows, groups=c), cols, groups=c)


def test_image_filter_is_the_unfolded_filter_bit_for_bit(speed_data: SpeedData, speed_report: SpeedReport) -> None:
    device = speed_report.device
    images = ((speed_data.test[:BATCH] + 1.0) / 2.0).to(device)
    three_channels = torch.rand(16, 3, 30, 31, generator=torch.Generator().manual_seed(0)).to(device)
    for x in (images, images.double(), three_channels):
        window = SMALL_IMAGE_SETTINGS.gaussian_window(dtype=x.dtype, device=device)
        assert torch.equal(_filter(x, window), _unfolded_filter(x, window))
