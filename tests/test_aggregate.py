"""The aggregate over benchmarks against rliable's own values and closed forms.

REFERENCE below was computed once by rliable 1.2.0 (with arch 7.2.0, pandas 2.3.3, numpy 2.4.6,
scipy 1.17.1, in a separate virtual environment: rliable cannot be imported next to this project's
pandas 3) on the fixed case A, B, C below, with 50,000 bootstrap replicates and numpy's global
seed 0, by ``rly.get_interval_estimates(scores, lambda x: np.array([metrics.aggregate_iqm(x)]))``,
``rly.get_interval_estimates(pairs, metrics.probability_of_improvement)`` and
``rly.create_performance_profile(scores, taus)``. Point estimates must agree exactly (to float
rounding); interval ends are two Monte Carlo bootstraps of the same distribution (arch's and
scipy's generators differ), so they must agree within a tolerance a few times their Monte Carlo
error at these replicate counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from gvae_bench.results.aggregate import interquartile_mean, performance_profile, probability_of_improvement

A = np.array([[0.61, 0.42], [0.70, 0.47], [0.64, 0.40], [0.58, 0.52], [0.67, 0.45]])  # runs x benchmarks
B = np.array([[0.55, 0.48], [0.66, 0.41], [0.52, 0.39], [0.60, 0.44], [0.57, 0.50]])
C = np.array([[0.20, 0.15], [0.35, 0.12], [0.18, 0.30], [0.25, 0.22], [0.40, 0.10]])
SCORES = {"A": A, "B": B, "C": C}
REPS = 20_000
TOLERANCE = 0.012

#: rliable 1.2.0's (value, low, high), see the module docstring
REFERENCE_IQM: dict[str, tuple[float, float, float]] = {
    "A": (0.545, 0.515, 0.5766666666666667),
    "B": (0.51, 0.48, 0.5399999999999999),
    "C": (0.21666666666666667, 0.16666666666666666, 0.2866666666666667),
}
REFERENCE_POI: dict[tuple[str, str], tuple[float, float, float]] = {
    ("A", "B"): (0.7, 0.45999999999999996, 0.9199999999999999),
    ("A", "C"): (1.0, 1.0, 1.0),
    ("B", "C"): (1.0, 1.0, 1.0),
}
REFERENCE_PROFILE_TAUS = np.array([0.3, 0.5, 0.6])
REFERENCE_PROFILE: dict[str, tuple[list[float], list[float], list[float]]] = {
    "A": ([1.0, 0.6, 0.4], [1.0, 0.5, 0.2], [1.0, 0.8, 0.5]),
    "B": ([1.0, 0.5, 0.1], [1.0, 0.5, 0.0], [1.0, 0.5, 0.3]),
    "C": ([0.2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.4, 0.0, 0.0]),
}


def _columns(matrix: np.ndarray) -> list[np.ndarray]:
    return [matrix[:, j] for j in range(matrix.shape[1])]


def test_iqm_is_the_quarter_trimmed_mean_of_all_runs_and_its_interval_holds_it():
    for name, matrix in SCORES.items():
        est = interquartile_mean(_columns(matrix), reps=2000, seed=1)
        assert est.value == pytest.approx(st.trim_mean(matrix.ravel(), 0.25), abs=1e-15)
        assert est.low <= est.value <= est.high


def test_probability_of_improvement_closed_forms():
    # C is below A on every run of every benchmark: P = 1, and 0 the other way, with no spread
    est = probability_of_improvement(_columns(A), _columns(C), reps=2000)
    assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0)
    assert probability_of_improvement(_columns(C), _columns(A), reps=2000).value == 0.0
    assert probability_of_improvement(_columns(A), _columns(A), reps=2000).value == 0.5  # ties count half
    # lower is better: negating the scores turns P(A > B) into P(A < B)
    up = probability_of_improvement(_columns(A), _columns(B), reps=2000).value
    down = probability_of_improvement(_columns(A), _columns(B), higher_is_better=False, reps=2000).value
    assert up + down == pytest.approx(1.0, abs=1e-15)
    # one benchmark: the Mann-Whitney U statistic over n_A n_B
    u = st.mannwhitneyu(A[:, 0], B[:, 0]).statistic / 25
    assert probability_of_improvement([A[:, 0]], [B[:, 0]], reps=2000).value == pytest.approx(u, abs=1e-15)


def test_the_stratified_bootstrap_agrees_with_rliable_on_a_fixed_case():
    assert REFERENCE_IQM and REFERENCE_POI and REFERENCE_PROFILE
    for name, (value, low, high) in REFERENCE_IQM.items():
        est = interquartile_mean(_columns(SCORES[name]), reps=REPS, seed=7)
        assert est.value == pytest.approx(value, abs=1e-12)
        assert est.low == pytest.approx(low, abs=TOLERANCE) and est.high == pytest.approx(high, abs=TOLERANCE)
    for (x, y), (value, low, high) in REFERENCE_POI.items():
        est = probability_of_improvement(_columns(SCORES[x]), _columns(SCORES[y]), reps=REPS, seed=7)
        assert est.value == pytest.approx(value, abs=1e-12)
        assert est.low == pytest.approx(low, abs=2 * TOLERANCE) and est.high == pytest.approx(high, abs=2 * TOLERANCE)
    for name, (value, low, high) in REFERENCE_PROFILE.items():
        mine = performance_profile(_columns(SCORES[name]), REFERENCE_PROFILE_TAUS, reps=REPS, seed=7)
        assert np.allclose(mine[0], value, atol=1e-12)
        assert np.allclose(mine[1], low, atol=2 * TOLERANCE) and np.allclose(mine[2], high, atol=2 * TOLERANCE)
