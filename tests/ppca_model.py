"""Probabilistic PCA, the linear-Gaussian model whose log p(x) has a closed form: the reference
for the IWAE and AIS tests."""

from __future__ import annotations

import math

import torch

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
