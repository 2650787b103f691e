"""Known-answer tests for metrics/prdc.py (Kynkaanniemi et al. 2019 precision/recall; Naeem et al. 2020
density/coverage)."""

from __future__ import annotations

import math

import pytest
import torch

from gvae_bench.metrics.prdc import density_coverage, precision_recall


def _t(values: list) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _ring_centres(n_modes: int, d: int, radius: float = 50.0) -> torch.Tensor:
    """n_modes centres evenly spaced on a circle in the first two coordinates (neighbours ~31 apart for 10 modes)."""
    angle = torch.arange(n_modes, dtype=torch.float64) * 2.0 * math.pi / n_modes
    centres = torch.zeros(n_modes, d, dtype=torch.float64)
    centres[:, 0] = radius * angle.cos()
    centres[:, 1] = radius * angle.sin()
    return centres


def _clusters(centres: torch.Tensor, per_mode: int, std: float, g: torch.Generator) -> torch.Tensor:
    noise = std * torch.randn(len(centres) * per_mode, centres.shape[1], generator=g, dtype=torch.float64)
    return centres.repeat_interleave(per_mode, dim=0) + noise


# --- hand-computed examples ---------------------------------------------------------------------------------------

# 1-D. real = [0, 1, 3, 6], fake = [-1.5, 0.5, 2.5, 9, 10] (all exact in binary floating point).
# k = 1: real radii (nearest other real point) = [1, 1, 2, 3] -> balls [-1,1], [0,2], [1,5], [3,9].
#        fake radii = [2, 2, 2, 1, 1] -> balls [-3.5,0.5], [-1.5,2.5], [0.5,4.5], [8,10], [9,11].
#        precision: -1.5 no, 0.5 yes, 2.5 yes, 9 yes (|9 - 6| = 3 = radius: boundary counts), 10 no -> 3/5.
#        recall:    0 yes, 1 yes, 3 yes, 6 no -> 3/4.
#        density:   balls holding each fake point: 0, 2, 1, 1, 0 -> 4 / (1 * 5) = 0.8.
#        coverage:  every real ball holds a fake point (0.5, 0.5, 2.5, 9) -> 1.
# k = 2: real radii = [3, 2, 3, 5] -> balls [-3,3], [-1,3], [0,6], [1,11].
#        fake radii = [4, 2, 4, 6.5, 7.5].
#        density:   balls holding each fake point: 1, 3, 4, 1, 1 -> 10 / (2 * 5) = 1.0; coverage 1.
#        precision: every fake point is in some real ball -> 1; recall: 0, 1, 3 and 6 (|6 - 9| = 3 <= 6.5) -> 1.
REAL_1D = [0.0, 1.0, 3.0, 6.0]
FAKE_1D = [-1.5, 0.5, 2.5, 9.0, 10.0]


def test_hand_computed_1d_k1() -> None:
    real, fake = _t(REAL_1D), _t(FAKE_1D)  # 1-D tensors: n samples of dimension 1
    assert precision_recall(real, fake, k=1) == (0.6, 0.75)
    assert density_coverage(real, fake, k=1) == (0.8, 1.0)


def test_hand_computed_1d_k2() -> None:
    real, fake = _t(REAL_1D)[:, None], _t(FAKE_1D)[:, None]
    assert precision_recall(real, fake, k=2) == (1.0, 1.0)
    assert density_coverage(real, fake, k=2) == (1.0, 1.0)


def test_hand_computed_2d_square_with_ties() -> None:
    # Real: corners of the unit square. For every corner the two nearest others are both at distance 1 and the
    # third at sqrt(2), so the k = 1 and k = 2 radii are both 1 (ties count with multiplicity).
    real = _t([[0, 0], [1, 0], [0, 1], [1, 1]])
    # (0.5, 0.5): sqrt(0.5) from every corner -> in all 4 balls; (2, 0): exactly 1 from (1, 0) -> in 1 ball
    # (boundary); (2, 2): sqrt(2) > 1 from (1, 1) -> in none.
    fake = _t([[0.5, 0.5], [2.0, 0.0], [2.0, 2.0]])
    for k in (1, 2):
        density, coverage = density_coverage(real, fake, k=k)
        assert density == pytest.approx(5.0 / (k * 3), abs=1e-15)
        assert coverage == 1.0
    # Precision (k = 1): (0.5, 0.5) and (2, 0) are in a real ball, (2, 2) is not -> 2/3. Fake radii (k = 1):
    # r(0.5,0.5) = r(2,0) = sqrt(2.5) (their mutual distance), r(2,2) = 2; every corner is sqrt(0.5) from
    # (0.5, 0.5) -> recall 1.
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == pytest.approx(2.0 / 3.0, abs=1e-15)
    assert recall == 1.0
    # k = 3: radius sqrt(2) for every corner. |(2,0)-(1,1)| = |(2,2)-(1,1)| = sqrt(2): on the boundary -> inside
    # (distances and radii are both computed as sqrt(1 + 1), so the boundary comparison is exact).
    density, coverage = density_coverage(real, fake, k=3)
    # (0.5,0.5): 4 balls; (2,0): balls of (1,0) [1] and (1,1) [sqrt 2] -> 2; (2,2): ball of (1,1) -> 1. 7/(3*3).
    assert density == pytest.approx(7.0 / 9.0, abs=1e-15)
    assert coverage == 1.0


def test_duplicates_count_as_neighbours() -> None:
    # real = [0, 0, 5, 10], k = 1: the two zeros are each other's nearest neighbour (radius 0; the point itself is
    # excluded by index, not by distance); radii [0, 0, 5, 5].
    # fake = [0, 1]: 0 lies in the balls of both zeros (distance 0 <= 0) and of 5 (|0 - 5| = 5 <= 5) -> 3 balls;
    # 1 lies only in the ball of 5 -> 1. density = 4 / (1 * 2) = 2; balls of 0, 0, 5 hold a fake point -> 3/4.
    real, fake = _t([0.0, 0.0, 5.0, 10.0]), _t([0.0, 1.0])
    assert density_coverage(real, fake, k=1) == (2.0, 0.75)
    # precision: both fake points are inside a real ball -> 1. Fake radii (k = 1): 1 and 1 -> balls [-1,1], [0,2]:
    # real 0, 0 inside, 5 and 10 not -> recall 1/2.
    assert precision_recall(real, fake, k=1) == (1.0, 0.5)


# --- structural properties ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5])
def test_identical_sets(k: int) -> None:
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    assert precision_recall(x, x.clone(), k=k) == (1.0, 1.0)
    density, coverage = density_coverage(x, x.clone(), k=k)
    assert coverage == 1.0
    # Each real ball holds its own centre and its k neighbours (continuous data: no ties), so the total count is
    # N (k + 1) and density = (k + 1) / k exactly: "about 1", converging to 1 as k grows.
    assert density == pytest.approx((k + 1) / k, abs=1e-12)


def test_independent_samples_of_one_distribution() -> None:
    # Naeem et al. 2020: E[density] = 1 for fake ~ real distribution; E[coverage] ~ 1 - 2^-k for M = N.
    g = torch.Generator().manual_seed(20)
    real = torch.randn(1500, 2, generator=g, dtype=torch.float64)
    fake = torch.randn(1500, 2, generator=g, dtype=torch.float64)
    density, coverage = density_coverage(real, fake, k=5)
    assert density == pytest.approx(1.0, abs=0.1)
    assert coverage == pytest.approx(1.0 - 2.0**-5, abs=0.03)
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.95 and recall > 0.95


def test_exact_copy_of_half_the_modes() -> None:
    # 10 well-separated tight clusters of real data; fake = the real samples of 5 of the clusters, copied exactly.
    g = torch.Generator().manual_seed(30)
    real = _clusters(_ring_centres(10, 3), per_mode=40, std=0.5, g=g)
    fake = real[: 5 * 40].clone()
    # Every fake point is a real point (distance 0) -> precision 1. Clusters are ~31 apart and hold 40 > k points,
    # so k-NN radii inside a copied cluster are the same in both sets: each copied real point is in its own copy's
    # ball, no other real point is in any fake ball -> recall 1/2; likewise coverage 1/2; density (k + 1) / k.
    assert precision_recall(real, fake, k=3) == (1.0, 0.5)
    density, coverage = density_coverage(real, fake, k=5)
    assert coverage == 0.5
    assert density == pytest.approx(6.0 / 5.0, abs=1e-12)


def test_fresh_samples_from_half_the_modes() -> None:
    g = torch.Generator().manual_seed(31)
    centres = _ring_centres(10, 2)
    real = _clusters(centres, per_mode=100, std=1.0, g=g)
    fake = _clusters(centres[:5], per_mode=200, std=1.0, g=g)
    precision, recall = precision_recall(real, fake, k=3)
    density, coverage = density_coverage(real, fake, k=5)
    assert precision > 0.9
    assert recall == pytest.approx(0.5, abs=0.05) and recall <= 0.5
    assert coverage == pytest.approx(0.5, abs=0.05) and coverage <= 0.5
    assert density == pytest.approx(1.0, abs=0.15)


def test_fake_far_from_all_real_data() -> None:
    g = torch.Generator().manual_seed(40)
    real = torch.randn(100, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(80, 4, generator=g, dtype=torch.float64) + 1000.0
    assert precision_recall(real, fake, k=3) == (0.0, 0.0)
    assert density_coverage(real, fake, k=5) == (0.0, 0.0)


def test_block_size_does_not_change_results() -> None:
    g = torch.Generator().manual_seed(50)
    real = torch.randn(230, 5, generator=g, dtype=torch.float64)
    fake = torch.randn(170, 5, generator=g, dtype=torch.float64) * 1.3 + 0.2
    for block in (1, 7, 64):
        assert precision_recall(real, fake, k=3, block_size=block) == precision_recall(real, fake, k=3)
        assert density_coverage(real, fake, k=5, block_size=block) == density_coverage(real, fake, k=5)


def test_images_flattened_and_float32_promoted() -> None:
    g = torch.Generator().manual_seed(60)
    real = torch.randn(60, 1, 3, 3, generator=g)
    fake = torch.randn(50, 1, 3, 3, generator=g) + 0.3
    assert precision_recall(real, fake) == precision_recall(real.flatten(1).double(), fake.flatten(1).double())
    assert density_coverage(real, fake) == density_coverage(real.flatten(1).double(), fake.flatten(1).double())


def test_invalid_inputs() -> None:
    real = torch.randn(6, 2)
    fake = torch.randn(4, 2)
    with pytest.raises(ValueError, match="smaller than the number of real samples"):
        density_coverage(real, fake, k=6)
    with pytest.raises(ValueError, match="smaller than the number of fake samples"):
        precision_recall(real, fake, k=4)
    assert density_coverage(real, fake, k=4)[1] >= 0.0  # k only has to be below N for density/coverage
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        precision_recall(real, fake, k=0)
    with pytest.raises(ValueError, match="same feature dimension"):
        precision_recall(real, torch.randn(4, 3))
    with pytest.raises(ValueError, match="block_size"):
        density_coverage(real, fake, block_size=0)
    with pytest.raises(ValueError, match="at least 1 sample"):
        density_coverage(real, torch.empty(0, 2))
    with pytest.raises(ValueError, match="finite"):
        precision_recall(real, torch.full((4, 2), math.nan))
