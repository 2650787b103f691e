"""Known-answer tests for metrics/mmd.py (Gaussian-kernel MMD^2_u, Gretton et al. 2012, and the median heuristic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gvae_bench.metrics.mmd import gaussian_kernel_mmd2_unbiased, median_heuristic_bandwidth


def _brute_force_mmd2_u(x: np.ndarray, y: np.ndarray, h: float) -> float:
    """Literal double loop over Lemma 6 of Gretton et al. 2012 (JMLR), in float64."""
    m, n = len(x), len(y)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        diff = a - b
        return math.exp(-float(diff @ diff) / h)

    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * sxy / (m * n)


def _expected_gaussian_kernel(d: int, v: float, mean_diff_sq: float, h: float) -> float:
    """E exp(-||z||^2 / h) for z ~ N(m, v I_d), ||m||^2 = mean_diff_sq: (1 + 2v/h)^(-d/2) exp(-||m||^2 / (h + 2v))."""
    return (1.0 + 2.0 * v / h) ** (-d / 2.0) * math.exp(-mean_diff_sq / (h + 2.0 * v))


@pytest.fixture(scope="module")
def small_sets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    x = rng.normal(size=(37, 5))
    y = rng.normal(loc=0.4, scale=1.3, size=(53, 5))
    return x, y


# ---------------------------------------------------------------- (a) brute force


@pytest.mark.parametrize("block_size", [1, 8, 13, 37, 2048])
def test_matches_brute_force_float64(small_sets: tuple[np.ndarray, np.ndarray], block_size: int) -> None:
    x, y = small_sets
    h = 4.0
    expected = _brute_force_mmd2_u(x, y, h)
    got = gaussian_kernel_mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y), h, block_size=block_size)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_matches_brute_force_float32_inputs(small_sets: tuple[np.ndarray, np.ndarray]) -> None:
    # float32 matmuls inside the blocks; float64 accumulation keeps agreement at ~1e-6 relative.
    x, y = small_sets
    h = 4.0
    expected = _brute_force_mmd2_u(x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64), h)
    got = gaussian_kernel_mmd2_unbiased(torch.from_numpy(x).float(), torch.from_numpy(y).float(), h, block_size=8)
    assert got == pytest.approx(expected, rel=1e-6)


def test_image_shaped_inputs_are_flattened(small_sets: tuple[np.ndarray, np.ndarray]) -> None:
    rng = np.random.default_rng(7)
    x = rng.uniform(size=(11, 1, 2, 3))
    y = rng.uniform(size=(9, 1, 2, 3))
    expected = _brute_force_mmd2_u(x.reshape(11, -1), y.reshape(9, -1), 0.7)
    got = gaussian_kernel_mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y), 0.7, block_size=4)
    assert got == pytest.approx(expected, rel=1e-9)


def test_two_rows_each_minimum() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    y = np.array([[0.0, 2.0], [3.0, 1.0]])
    expected = _brute_force_mmd2_u(x, y, 1.5)
    assert gaussian_kernel_mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(y), 1.5) == pytest.approx(expected)


# ---------------------------------------------------------------- (b) closed form for Gaussians


def test_closed_form_isotropic_gaussians() -> None:
    d, s1, s2, h = 3, 1.0, 1.5, 6.0
    mu = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    true = (
        _expected_gaussian_kernel(d, 2 * s1**2, 0.0, h)
        + _expected_gaussian_kernel(d, 2 * s2**2, 0.0, h)
        - 2.0 * _expected_gaussian_kernel(d, s1**2 + s2**2, float(mu @ mu), h)
    )
    assert true == pytest.approx(0.10377, abs=1e-5)  # the quantity being estimated

    g = torch.Generator().manual_seed(0)
    n = 4000
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * s1
    y = torch.randn(n, d, generator=g, dtype=torch.float64) * s2 + mu
    got = gaussian_kernel_mmd2_unbiased(x, y, h)
    # Standard error of the estimator at n = m = 4000 for this setting, measured over 40 seeds: ~0.004.
    # Tolerance = 4 standard errors.
    assert abs(got - true) < 0.016, (got, true)


# ---------------------------------------------------------------- (c) identical vs shifted


def test_identical_distributions_near_zero_and_shift_is_larger() -> None:
    g = torch.Generator().manual_seed(3)
    d, n = 8, 1500
    h = 2.0 * d
    x = torch.randn(n, d, generator=g)
    y_same = torch.randn(n, d, generator=g)
    y_shift = torch.randn(n, d, generator=g) + 0.75
    same = gaussian_kernel_mmd2_unbiased(x, y_same, h, block_size=512)
    shifted = gaussian_kernel_mmd2_unbiased(x, y_shift, h, block_size=512)
    # Closed form under the shift: 2 (1 + 4/h)^(-d/2) (1 - exp(-||m||^2 / (h + 4))) ~ 0.041.
    expected_shift = 2.0 * (1 + 4.0 / h) ** (-d / 2) * (1 - math.exp(-(0.75**2) * d / (h + 4.0)))
    assert abs(same) < 2e-3
    assert shifted > 10 * abs(same)
    assert shifted == pytest.approx(expected_shift, abs=0.01)


def test_same_sample_twice_is_exact_for_u_statistic() -> None:
    # With x == y and S = sum_{i!=j} k(x_i, x_j) <= m(m-1): MMD^2_u = 2S/(m^2 (m-1)) - 2/m <= 0, so it is negative.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 4))
    expected = _brute_force_mmd2_u(x, x, 3.0)
    got = gaussian_kernel_mmd2_unbiased(torch.from_numpy(x), torch.from_numpy(x), 3.0, block_size=6)
    assert got == pytest.approx(expected, rel=1e-9)
    assert got < 0  # the unbiased estimator dips below zero when both sets are the same points


# ---------------------------------------------------------------- (d) median heuristic


@pytest.mark.parametrize("n_rows", [9, 10])  # odd and even number of pairs (36 and 45) -> both median conventions
def test_median_heuristic_matches_numpy(n_rows: int) -> None:
    rng = np.random.default_rng(n_rows)
    ref = rng.normal(size=(n_rows, 6))
    pairs = [float(((ref[i] - ref[j]) ** 2).sum()) for i in range(n_rows) for j in range(i + 1, n_rows)]
    expected = float(np.median(pairs))
    got = median_heuristic_bandwidth(torch.from_numpy(ref))
    assert got == pytest.approx(expected, rel=1e-10)


def test_median_heuristic_even_pair_count_uses_midpoint() -> None:
    # 4 rows -> 6 pairs; points on a line at 0, 1, 3, 7: squared distances 1, 9, 49, 4, 36, 16 -> median (9+16)/2.
    ref = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    assert median_heuristic_bandwidth(ref) == pytest.approx(12.5)


def test_median_heuristic_subset_is_seeded_and_from_rows() -> None:
    rng = np.random.default_rng(0)
    ref = torch.from_numpy(rng.normal(size=(50, 3)))
    a = median_heuristic_bandwidth(ref, max_samples=10, generator=torch.Generator().manual_seed(1))
    b = median_heuristic_bandwidth(ref, max_samples=10, generator=torch.Generator().manual_seed(1))
    assert a == b
    # Reproduce the subset draw: the first max_samples entries of randperm from the same seed.
    idx = torch.randperm(50, generator=torch.Generator().manual_seed(1))[:10].numpy()
    sub = ref.numpy()[idx]
    pairs = [float(((sub[i] - sub[j]) ** 2).sum()) for i in range(10) for j in range(i + 1, 10)]
    assert a == pytest.approx(float(np.median(pairs)), rel=1e-10)


def test_median_heuristic_image_shaped_input() -> None:
    rng = np.random.default_rng(2)
    ref = rng.uniform(size=(7, 1, 3, 3))
    flat = ref.reshape(7, -1)
    pairs = [float(((flat[i] - flat[j]) ** 2).sum()) for i in range(7) for j in range(i + 1, 7)]
    assert median_heuristic_bandwidth(torch.from_numpy(ref)) == pytest.approx(float(np.median(pairs)), rel=1e-10)


# ---------------------------------------------------------------- (e) bad input


def test_bad_inputs_raise_value_error() -> None:
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match="feature dimension"):
        gaussian_kernel_mmd2_unbiased(x, torch.randn(5, 4), 1.0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_kernel_mmd2_unbiased(x, torch.randn(1, 3), 1.0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        gaussian_kernel_mmd2_unbiased(x[:1], x, 1.0)
    for bad_h in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="bandwidth"):
            gaussian_kernel_mmd2_unbiased(x, x, bad_h)
    with pytest.raises(ValueError, match="block_size"):
        gaussian_kernel_mmd2_unbiased(x, x, 1.0, block_size=0)
    x_nan = x.clone()
    x_nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        gaussian_kernel_mmd2_unbiased(x_nan, x, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        median_heuristic_bandwidth(torch.randn(1, 3))
    with pytest.raises(ValueError, match="max_samples"):
        median_heuristic_bandwidth(x, max_samples=1)
