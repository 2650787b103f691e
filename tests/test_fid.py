"""Known-answer tests for metrics/fid.py (Frechet distance between fitted Gaussians, Heusel et al. 2017)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gvae_bench.metrics.fid import frechet_distance


def _with_exact_moments(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> torch.Tensor:
    """n rows whose sample mean is ``mean`` and unbiased (n-1) sample covariance is ``cov``, up to rounding.

    A random sample is centred and whitened (its sample covariance becomes I), then re-coloured with a Cholesky
    factor of ``cov`` and shifted by ``mean``.
    """
    d = len(mean)
    z = np.random.default_rng(seed).normal(size=(n, d))
    z -= z.mean(axis=0)
    white = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / (n - 1))).T
    x = white @ np.linalg.cholesky(cov).T + mean
    return torch.from_numpy(x)


def _closed_form(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Dowson-Landau closed form with scipy.linalg.sqrtm for the matrix square root."""
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2.0 * np.real(covmean)))


def _random_spd(d: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    m = rng.normal(size=(d, d))
    return scale * (m @ m.T / d + 0.1 * np.eye(d))


def test_exact_moments_helper_is_exact() -> None:
    mean = np.array([1.0, -2.0, 0.5])
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    x = _with_exact_moments(40, mean, cov, seed=0).numpy()
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=1e-12)
    np.testing.assert_allclose(np.cov(x, rowvar=False), cov, atol=1e-12)


@pytest.mark.parametrize("n, d, scale", [(300, 8, 1.0), (500, 16, 50.0), (10, 30, 3.0)])
def test_identical_sets_give_zero(n: int, d: int, scale: float) -> None:
    # (10, 30): n < d, so the covariance is singular; the distance must still be 0.
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * scale
    total_variance = float(torch.var(x, dim=0).sum())
    assert abs(frechet_distance(x, x)) < 1e-6 * total_variance


def test_diagonal_gaussians_closed_form() -> None:
    # For diagonal covariances diag(a), diag(b): Tr(S_a + S_b - 2 (S_a S_b)^{1/2}) = sum (sqrt(a_i) - sqrt(b_i))^2.
    mu_a = np.array([0.0, 1.0, -1.0, 2.0, 0.5])
    mu_b = np.array([1.0, 1.0, 0.0, -1.0, 0.5])
    a = np.array([1.0, 4.0, 0.25, 9.0, 2.0])
    b = np.array([4.0, 1.0, 0.25, 1.0, 0.5])
    x = _with_exact_moments(200, mu_a, np.diag(a), seed=1)
    y = _with_exact_moments(150, mu_b, np.diag(b), seed=2)
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()  # = 11 + 6.5
    assert expected == pytest.approx(17.5)
    assert frechet_distance(x, y) == pytest.approx(expected, abs=1e-6)


def test_one_dimensional_gaussians() -> None:
    # d = 1: (m_a - m_b)^2 + (s_a - s_b)^2 for standard deviations s.
    x = _with_exact_moments(50, np.array([3.0]), np.array([[4.0]]), seed=3)[:, 0]  # 1-D tensor: n samples of dim 1
    y = _with_exact_moments(70, np.array([-1.0]), np.array([[0.25]]), seed=4)
    assert frechet_distance(x, y) == pytest.approx(16.0 + 1.5**2, abs=1e-6)


def test_non_diagonal_exact_moments_match_sqrtm() -> None:
    rng = np.random.default_rng(5)
    d = 6
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    cov_a, cov_b = _random_spd(d, rng), _random_spd(d, rng, scale=3.0)
    x = _with_exact_moments(100, mu_a, cov_a, seed=6)
    y = _with_exact_moments(120, mu_b, cov_b, seed=7)
    assert frechet_distance(x, y) == pytest.approx(_closed_form(mu_a, cov_a, mu_b, cov_b), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_sets_match_sqrtm_on_sample_moments(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    d = 10
    x = rng.normal(size=(80, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    y = 2.0 * rng.normal(size=(60, d)) @ rng.normal(size=(d, d))
    expected = _closed_form(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert frechet_distance(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_symmetric_and_float32_input() -> None:
    g = torch.Generator().manual_seed(11)
    x = torch.randn(90, 7, generator=g)
    y = torch.randn(110, 7, generator=g) * 1.5 + 0.3
    ab = frechet_distance(x, y)
    assert isinstance(ab, float) and ab > 0.0
    assert frechet_distance(y, x) == pytest.approx(ab, rel=1e-12)
    # float32 inputs are promoted to float64 before any arithmetic.
    assert ab == pytest.approx(frechet_distance(x.double(), y.double()), rel=1e-12)


def test_images_are_flattened() -> None:
    g = torch.Generator().manual_seed(12)
    x = torch.randn(40, 2, 2, 2, generator=g, dtype=torch.float64)
    y = torch.randn(30, 2, 2, 2, generator=g, dtype=torch.float64) + 1.0
    assert frechet_distance(x, y) == pytest.approx(frechet_distance(x.flatten(1), y.flatten(1)), rel=1e-12)


def test_invalid_inputs() -> None:
    x = torch.randn(5, 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(x[:1], x)
    with pytest.raises(ValueError, match="same feature dimension"):
        frechet_distance(x, torch.randn(5, 4))
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(x, torch.full((5, 3), math.nan))
    with pytest.raises(ValueError, match="torch.Tensor"):
        frechet_distance(x.numpy(), x)  # type: ignore[arg-type]
