"""IWAE on probabilistic PCA, where log p(x) is known in closed form: the bound sits below the
exact value and closes in on it as k grows; with the exact posterior it is exact for any k."""

from __future__ import annotations


import torch

from gvae_bench.metrics.iwae import iwae_log_likelihood
from ppca_model import L, _ppca  # noqa: E402  (tests/ is on sys.path under pytest)


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
