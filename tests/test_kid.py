"""Known-answer tests for metrics/kid.py (cubic-kernel unbiased MMD^2 over subsets, Binkowski et al. 2018)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gvae_bench.metrics.kid import kernel_inception_distance


def _brute_force_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Literal double loops over the unbiased MMD^2 (Gretton et al. 2012, Lemma 6) with k = (x.y/d + 1)^3."""
    m, n = len(x), len(y)
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + 1.0) ** 3

    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)


@pytest.mark.parametrize("subset_size", [15, 1000])
def test_matches_brute_force_on_whole_set(subset_size: int) -> None:
    # subset_size >= n: the single subset is a permutation of each whole set, so the estimate is the full-set one.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(15, 4))
    y = rng.normal(loc=0.7, scale=1.4, size=(15, 4))
    mean, std = kernel_inception_distance(
        torch.from_numpy(x), torch.from_numpy(y), n_subsets=1, subset_size=subset_size,
        generator=torch.Generator().manual_seed(1),
    )
    assert mean == pytest.approx(_brute_force_kid(x, y), abs=1e-8)
    assert std == 0.0


def test_subset_draw_matches_brute_force_on_the_drawn_rows() -> None:
    # Unequal set sizes: m = min(subset_size, n_a, n_b) = 6 rows drawn from each set with randperm, a first then b.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20, 3))
    y = rng.normal(size=(9, 3)) + 0.5
    mean, _ = kernel_inception_distance(torch.from_numpy(x), torch.from_numpy(y), n_subsets=1, subset_size=6,
                                        generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    ia = torch.randperm(20, generator=g)[:6].numpy()
    ib = torch.randperm(9, generator=g)[:6].numpy()
    assert mean == pytest.approx(_brute_force_kid(x[ia], y[ib]), abs=1e-8)


def test_mean_of_subsets_and_population_std() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 3))
    y = rng.normal(size=(10, 3)) * 2.0
    mean, std = kernel_inception_distance(torch.from_numpy(x), torch.from_numpy(y), n_subsets=4, subset_size=5,
                                          generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    values = []
    for _ in range(4):
        ia = torch.randperm(12, generator=g)[:5].numpy()
        ib = torch.randperm(10, generator=g)[:5].numpy()
        values.append(_brute_force_kid(x[ia], y[ib]))
    assert mean == pytest.approx(float(np.mean(values)), abs=1e-8)
    assert std == pytest.approx(float(np.std(values)), abs=1e-8)  # population std (ddof = 0)


def test_same_distribution_near_zero_shifted_clearly_positive() -> None:
    g = torch.Generator().manual_seed(6)
    d = 16
    x = torch.randn(600, d, generator=g, dtype=torch.float64)
    y = torch.randn(600, d, generator=g, dtype=torch.float64)
    z = torch.randn(600, d, generator=g, dtype=torch.float64) + 0.5
    same_mean, same_std = kernel_inception_distance(x, y, n_subsets=20, subset_size=300,
                                                    generator=torch.Generator().manual_seed(7))
    diff_mean, diff_std = kernel_inception_distance(x, z, n_subsets=20, subset_size=300,
                                                    generator=torch.Generator().manual_seed(7))
    assert same_std > 0.0 and diff_std > 0.0
    assert abs(same_mean) < 0.02 * diff_mean
    assert diff_mean > 10.0 * diff_std


def test_same_rows_on_both_sides_and_symmetry() -> None:
    # With Y = X (whole set, m rows), MMD^2_u = 2 S/(m(m-1)) - 2 (S + T)/m^2 with S = sum_{i != j} k_ij and
    # T = sum_i k_ii, i.e. (2/m) * (mean off-diagonal kernel - mean diagonal kernel): O(1/m) and negative here.
    g = torch.Generator().manual_seed(8)
    m = 50
    x = torch.randn(m, 5, generator=g, dtype=torch.float64)
    y = torch.randn(m, 5, generator=g, dtype=torch.float64) + 1.0
    kern = (x @ x.T / 5 + 1.0) ** 3
    off_mean = float((kern.sum() - kern.diagonal().sum()) / (m * (m - 1)))
    diag_mean = float(kern.diagonal().mean())
    xx, _ = kernel_inception_distance(x, x, n_subsets=1, subset_size=m)
    assert xx == pytest.approx(2.0 / m * (off_mean - diag_mean), rel=1e-10)
    xy, _ = kernel_inception_distance(x, y, n_subsets=1, subset_size=m)
    yx, _ = kernel_inception_distance(y, x, n_subsets=1, subset_size=m)
    assert xy == pytest.approx(yx, rel=1e-12)
    assert abs(xx) < 0.1 * xy


def test_reproducible_with_seeded_generator_and_float32() -> None:
    g = torch.Generator().manual_seed(9)
    x = torch.randn(40, 6, generator=g)
    y = torch.randn(30, 6, generator=g) + 0.2
    r1 = kernel_inception_distance(x, y, n_subsets=5, subset_size=10, generator=torch.Generator().manual_seed(10))
    r2 = kernel_inception_distance(x.double(), y.double(), n_subsets=5, subset_size=10,
                                   generator=torch.Generator().manual_seed(10))
    assert r1 == pytest.approx(r2, rel=1e-12)
    assert all(isinstance(v, float) for v in r1)


def test_invalid_inputs() -> None:
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        kernel_inception_distance(x[:1], x)
    with pytest.raises(ValueError, match="same feature dimension"):
        kernel_inception_distance(x, torch.randn(5, 4))
    with pytest.raises(ValueError, match="n_subsets"):
        kernel_inception_distance(x, x, n_subsets=0)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_inception_distance(x, x, subset_size=1)
    with pytest.raises(ValueError, match="finite"):
        kernel_inception_distance(x, torch.full((5, 3), math.inf))


def test_kid_holds_below_the_feature_dimension_against_the_exact_mmd2_of_discrete_distributions() -> None:
    """Issue 34 item 8: KID fits no covariance, so its unbiased estimator holds at m = 20 samples of d = 128
    features. P and Q are uniform over 4 points each, so the exact MMD^2 = E k(p, p') + E k(q, q') - 2 E k(p, q)
    is a mean over the 4 x 4 point pairs (i = j included: independent draws coincide with probability 1/4);
    the mean of 3000 independent estimates from 20 draws each lands within 4 standard errors of it."""
    g = torch.Generator().manual_seed(5)
    d = 128
    p_points = torch.randn(4, d, generator=g, dtype=torch.float64)
    q_points = torch.randn(4, d, generator=g, dtype=torch.float64) * 0.8 + 0.3

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T / d + 1.0) ** 3

    exact = float(k(p_points, p_points).mean() + k(q_points, q_points).mean() - 2 * k(p_points, q_points).mean())
    estimates = []
    for _ in range(3000):
        a = p_points[torch.randint(4, (20,), generator=g)]
        b = q_points[torch.randint(4, (20,), generator=g)]
        estimates.append(kernel_inception_distance(a, b, n_subsets=1, subset_size=20, generator=g)[0])
    values = torch.tensor(estimates, dtype=torch.float64)
    error = float(values.std() / len(values) ** 0.5)
    assert exact > 20 * error  # a real difference, resolved by the test
    assert abs(float(values.mean()) - exact) < 4 * error
