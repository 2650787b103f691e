"""AIS on probabilistic PCA, where log p(x) has a closed form (tests/test_iwae.py's model): with
enough intermediate distributions it lands within a fraction of a nat of the exact value, from
the prior and from a proposal; with few it stays below (a stochastic lower bound)."""

from __future__ import annotations

import torch

from gvae_bench.metrics.ais import ais_log_likelihood, sigmoid_schedule
from ppca_model import L, _ppca


def test_sigmoid_schedule_runs_from_zero_to_one_increasing():
    beta = sigmoid_schedule(50)
    assert beta[0] == 0 and beta[-1] == 1 and len(beta) == 51
    assert bool((beta[1:] > beta[:-1]).all())


def test_ais_from_the_prior_is_within_a_nat_of_the_exact_log_likelihood():
    x, exact, log_px_z, _, _ = _ppca()
    estimate = ais_log_likelihood(x, log_px_z, L, n_steps=1000, n_chains=8, n_leapfrog=5,
                                  generator=torch.Generator().manual_seed(0))
    per_image_error = (estimate - exact).abs()
    assert float(per_image_error.max()) < 1.0
    assert abs(float((estimate - exact).mean())) < 0.1


def test_ais_from_an_encoder_proposal_is_within_a_nat():
    x, exact, log_px_z, post_mean, post_var = _ppca()
    initial = (post_mean + 0.3, (4 * post_var).log().expand_as(post_mean))  # a deliberately poor q(z|x)
    estimate = ais_log_likelihood(x, log_px_z, L, n_steps=200, n_chains=8, n_leapfrog=5, initial=initial,
                                  generator=torch.Generator().manual_seed(1))
    assert float((estimate - exact).abs().max()) < 1.0


def test_short_ais_from_the_prior_is_below_the_exact_value_on_average():
    x, exact, log_px_z, _, _ = _ppca()
    estimate = ais_log_likelihood(x, log_px_z, L, n_steps=2, n_chains=2, n_leapfrog=1,
                                  generator=torch.Generator().manual_seed(2))
    assert float((exact - estimate).mean()) > 0.05
