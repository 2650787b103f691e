"""IWAE on probabilistic PCA, where log p(x) is known in closed form: the bound sits below the
exact value and closes in on it as k grows; with the exact posterior it is exact for any k."""

from __future__ import annotations

import math

import torch

from metrics.iwae import iwae_log_likelihood

D, L, SIGMA = 5, 2, 0.5


def _ppca(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    U, S, _ = torch.linalg.svd(torch.randn(D, L, generator=g, dtype=torch.float64), full_matrices=False)
    W = U * S  # W^T W diagonal, so the exact posterior has a diagonal covariance
    b = torch.randn(D, generator=g, dtype=torch.float64)
    z = torch.randn(64, L, generator=g, dtype=torch.float64)
    x = z @ W.T + b + SIGMA * torch.randn(64, D, generator=g, dtype=torch.float64)
    C = W @ W.T + SIGMA**2 * torch.eye(D, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(b, C).log_prob(x)  # log p(x) = log N(x; b, W W^T + s^2 I)

    def log_p_x_given_z(x_, z_):  # N(x; W z + b, s^2 I), z_: (m, n, L)
        mean = z_ @ W.T + b
        return (-0.5 * ((x_ - mean) / SIGMA).pow(2) - math.log(SIGMA) - 0.5 * math.log(2 * math.pi)).sum(-1)

    # exact posterior: M = W^T W + s^2 I; q(z|x) = N(M^-1 W^T (x - b), s^2 M^-1)
    M = W.T @ W + SIGMA**2 * torch.eye(L, dtype=torch.float64)
    post_mean = torch.linalg.solve(M, W.T @ (x - b).T).T
    post_var = SIGMA**2 * torch.linalg.inv(M).diagonal()
    return x, exact, log_p_x_given_z, post_mean, post_var


def test_exact_posterior_gives_the_exact_log_likelihood_for_any_k():
    x, exact, log_px_z, post_mean, post_var = _ppca()
    encode = lambda _: (post_mean, post_var.log().expand_as(post_mean))  # noqa: E731  q(z|x) = p(z|x)
    for k in (1, 7):  # every importance weight p(x, z) / p(z|x) equals p(x)
        bound = iwae_log_likelihood(x, encode, log_px_z, k=k, chunk=3, generator=torch.Generator().manual_seed(k))
        assert (bound - exact).abs().max() < 1e-9


def test_bound_is_below_exact_and_tightens_with_k():
    x, exact, log_px_z, post_mean, post_var = _ppca()
    # a deliberately poor proposal: the posterior mean shifted, variance inflated
    encode = lambda _: (post_mean + 0.3, (4 * post_var).log().expand_as(post_mean))  # noqa: E731
    gaps = []
    for k in (1, 10, 100, 1000):
        bound = iwae_log_likelihood(x, encode, log_px_z, k=k, chunk=256, generator=torch.Generator().manual_seed(k))
        gaps.append(float((exact - bound).mean()))
    assert all(gap > -0.01 for gap in gaps)  # below exact (up to Monte Carlo noise)
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3] and gaps[3] < 0.05 and gaps[0] > 0.3
