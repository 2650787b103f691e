from __future__ import annotations

import torch

from benchmarks.mixtures import Grid25, Ring8
from metrics.mixture_modes import mode_coverage


def test_samples_placed_on_known_modes_are_counted_exactly():
    centres = Ring8.centres()
    # 5 samples on each of modes 0..4, none near 5..7, plus 3 far-off samples
    on_modes = centres[:5].repeat_interleave(5, dim=0) + 0.005  # 0.5 std away from the centre
    far = torch.tensor([[0.0, 0.0], [3.0, 3.0], [0.5, 0.5]])
    result = mode_coverage(torch.cat([on_modes, far]), centres, std=0.01)
    assert result.modes_covered == 5
    assert result.counts == [5, 5, 5, 5, 5, 0, 0, 0]
    assert abs(result.high_quality_fraction - 25 / 28) < 1e-12


def test_threshold_is_three_standard_deviations():
    centres = Grid25.centres()
    inside = centres[:1] + torch.tensor([[0.149, 0.0]])  # 2.98 std of 0.05
    outside = centres[:1] + torch.tensor([[0.151, 0.0]])  # 3.02 std
    assert mode_coverage(inside, centres, 0.05).modes_covered == 1
    assert mode_coverage(outside, centres, 0.05).modes_covered == 0


def test_true_mixture_samples_cover_every_mode():
    bench = Grid25(".", Grid25.Config(n_train=10, n_test=2500))
    result = mode_coverage(bench.load().test, bench.modes, bench.mode_std)
    assert result.modes_covered == 25
    assert result.high_quality_fraction > 0.98  # 1 - P(chi_2 > 9) = 0.989
