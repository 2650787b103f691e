"""gvae_bench.results.stats against known answers: scipy/statsmodels themselves, closed forms, brute force."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from gvae_bench.results.power import seeds_for_paired_power
from gvae_bench.results.stats import (Comparison, Interval, adjust, best_or_tied, compare, mean_interval, range_of,
                              rank_groups, separated_pairs)

# t_{2, 0.975} in closed form: for 2 df the t quantile is (2p - 1) / sqrt(2p(1 - p)).
T_2_975 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # 4.302652729749464


def test_t_quantile_closed_form():
    assert T_2_975 == pytest.approx(st.t.ppf(0.975, 2), rel=1e-14)
    assert T_2_975 == pytest.approx(4.302652729911275, rel=1e-9)  # the value printed in tables


# ---------------------------------------------------------------- intervals

def test_interval_closed_form_one_two_three():
    iv = mean_interval([1.0, 2.0, 3.0])
    half = T_2_975 / math.sqrt(3)  # s = 1
    assert isinstance(iv, Interval)
    assert (iv.mean, iv.std, iv.n) == (2.0, 1.0, 3)
    assert iv.low == pytest.approx(2.0 - half, rel=1e-12)
    assert iv.high == pytest.approx(2.0 + half, rel=1e-12)
    assert "t" in iv.method


def test_interval_matches_scipy_t_interval():
    x = np.array([0.31, 0.27, 0.35, 0.29, 0.40])
    for conf in (0.9, 0.95, 0.99):
        iv = mean_interval(x, confidence=conf)
        low, high = st.t.interval(conf, len(x) - 1, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(len(x)))
        assert iv.low == pytest.approx(low, rel=1e-12) and iv.high == pytest.approx(high, rel=1e-12)
        assert iv.std == pytest.approx(x.std(ddof=1))


def test_interval_small_n_nan_and_zero_spread():
    one = mean_interval([0.7])
    assert one.mean == 0.7 and one.n == 1 and one.method == "one seed: no interval"
    assert math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.std)
    none = mean_interval([])
    assert none.n == 0 and all(math.isnan(v) for v in (none.mean, none.std, none.low, none.high))
    assert mean_interval([float("nan"), 0.7]).method == "one seed: no interval"  # NaN dropped
    assert mean_interval([1.0, float("nan"), 2.0, 3.0]).low == pytest.approx(2.0 - T_2_975 / math.sqrt(3))
    flat = mean_interval([0.5, 0.5, 0.5])
    assert (flat.low, flat.high, flat.std) == (0.5, 0.5, 0.0)
    with pytest.raises(ValueError):
        mean_interval([1.0, 2.0], confidence=95)


# ---------------------------------------------------------------- tests of a difference

A5 = [0.81, 0.79, 0.84, 0.80, 0.83]
B5 = [0.78, 0.77, 0.80, 0.79, 0.74]


def test_welch_matches_scipy():
    c = compare(A5, B5, higher_is_better=True)
    ref = st.ttest_ind(A5, B5, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert c.test == "welch"
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert (c.low, c.high) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))
    assert c.difference == pytest.approx(np.mean(A5) - np.mean(B5))
    assert (c.n_a, c.n_b, c.verdict) == (5, 5, "")
    assert math.isnan(c.p_adjusted)


def test_paired_by_seed_matches_ttest_rel_and_aligns_seeds():
    seeds = [0, 1, 2, 3, 4]
    perm = [3, 0, 4, 1, 2]  # B's values listed in another seed order
    c = compare(A5, [B5[i] for i in perm], higher_is_better=True, a_seeds=seeds, b_seeds=perm)
    ref = st.ttest_rel(A5, B5)
    ci = ref.confidence_interval(0.95)
    assert c.test == "paired t by seed"
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert (c.low, c.high) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))


def test_pairing_rules():
    seeds = [0, 1, 2, 3, 4]
    assert compare(A5, B5, True, a_seeds=seeds, b_seeds=seeds, paired=False).test == "welch"
    assert compare(A5, B5, True, a_seeds=seeds, b_seeds=[0, 1, 2, 3, 9]).test == "welch"
    assert compare(A5, B5, True, a_seeds=[0, 0, 1, 2, 3], b_seeds=[0, 0, 1, 2, 3]).test == "welch"
    assert compare(A5, B5, True, a_seeds=seeds).test == "welch"
    with pytest.raises(ValueError):
        compare(A5, B5, True, paired=True)
    with pytest.raises(ValueError):
        compare(A5, B5, True, a_seeds=[0, 1], b_seeds=seeds)  # seeds do not match the values
    # A NaN value goes with its seed; the remaining seeds differ, so Welch.
    a_nan = [float("nan")] + A5[1:]
    c = compare(a_nan, B5, True, a_seeds=seeds, b_seeds=seeds)
    assert c.test == "welch" and c.n_a == 4
    assert c.p_value == pytest.approx(st.ttest_ind(A5[1:], B5, equal_var=False).pvalue)


def test_one_seed_no_interval_no_test():
    c = compare([0.8], [0.7, 0.75, 0.72], higher_is_better=True)
    assert c.test == "none" and math.isnan(c.p_value) and math.isnan(c.low) and math.isnan(c.high)
    assert c.reason == "needs >= 2 seeds per model; A has 1"
    assert c.difference == pytest.approx(0.8 - np.mean([0.7, 0.75, 0.72]))
    [adj] = adjust([c])
    assert adj.verdict == "no test" and math.isnan(adj.p_adjusted)
    assert "B has 0" in compare([0.1, 0.2], [], True).reason


def test_zero_variance_is_explicit():
    same = compare([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], True)
    assert (same.p_value, same.low, same.high) == (1.0, 0.0, 0.0) and "zero variance" in same.note
    diff = compare([0.5, 0.5, 0.5], [0.4, 0.4, 0.4], True)
    assert diff.p_value == 0.0 and diff.difference == pytest.approx(0.1) and diff.note
    assert adjust([diff])[0].verdict == "A better"
    assert adjust([same])[0].verdict == "not separated"
    # paired: constant per-seed difference
    shift = compare([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], True, a_seeds=[1, 2, 3], b_seeds=[1, 2, 3])
    assert shift.test == "paired t by seed" and shift.p_value == 0.0 and shift.low == shift.high == 0.5


# ---------------------------------------------------------------- Holm

def _holm_brute(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):  # rank 0 ↔ i = 1 in p_(i) · (m - i + 1)
        running = max(running, p[i] * (m - rank))
        out[i] = min(1.0, running)
    return out


def _with_p(p: float, difference: float = 1.0, higher_is_better: bool = True) -> Comparison:
    test = "none" if math.isnan(p) else "welch"
    return Comparison(mean_a=difference, mean_b=0.0, n_a=3, n_b=3, difference=difference, low=0.0,
                      high=0.0, confidence=0.95, test=test, p_value=p, higher_is_better=higher_is_better)


def test_holm_matches_multipletests_and_brute_force():
    p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.5]
    out = adjust([_with_p(x) for x in p])
    ref = multipletests(p, alpha=0.05, method="holm")[1]
    brute = _holm_brute(p)
    assert [c.p_adjusted for c in out] == pytest.approx(list(ref), rel=1e-12)
    assert [c.p_adjusted for c in out] == pytest.approx(brute, rel=1e-12)
    assert [c.verdict for c in out] == ["A better" if b < 0.05 else "not separated" for b in brute]


def test_holm_leaves_untested_out_of_the_family():
    p = [0.01, float("nan"), 0.02]
    out = adjust([_with_p(x) for x in p])
    assert out[0].p_adjusted == pytest.approx(0.02) and out[2].p_adjusted == pytest.approx(0.02)
    assert math.isnan(out[1].p_adjusted) and out[1].verdict == "no test"
    assert adjust([]) == []


def test_verdict_direction_respects_higher_is_better():
    cases = {(1.0, True): "A better", (-1.0, True): "B better",
             (1.0, False): "B better", (-1.0, False): "A better"}
    for (d, hib), verdict in cases.items():
        assert adjust([_with_p(0.001, d, hib)])[0].verdict == verdict


# ---------------------------------------------------------------- intervals in the metric's range

def test_logit_interval_is_the_t_interval_of_the_logits_mapped_back():
    x = np.array([0.0014, 0.0006, 0.0008])  # collapsed alpha-GAN's coverage: Student t crosses 0
    assert mean_interval(x).low < 0
    iv = mean_interval(x, bounds=range_of("coverage"))
    y = np.log(x / (1 - x))
    lo, hi = st.t.interval(0.95, 2, loc=y.mean(), scale=st.sem(y))
    assert iv.low == pytest.approx(1 / (1 + math.exp(-lo)), rel=1e-12)
    assert iv.high == pytest.approx(1 / (1 + math.exp(-hi)), rel=1e-12)
    assert 0 < iv.low < iv.mean < iv.high < 1 and "logit" in iv.method and iv.mean == pytest.approx(x.mean())


def test_log_interval_for_nonnegative_and_real_range_for_unbiased_estimators():
    x = np.array([0.0003, 0.0021, 0.0030])  # all positive, Student t crosses 0
    iv = mean_interval(x, bounds=range_of("fid"))
    lo, hi = st.t.interval(0.95, 2, loc=np.log(x).mean(), scale=st.sem(np.log(x)))
    assert (iv.low, iv.high) == pytest.approx((math.exp(lo), math.exp(hi)), rel=1e-12) and iv.low > 0
    kid = mean_interval([-0.01, 0.02, 0.05], bounds=range_of("kid"))  # KID and MMD²_u keep their real range
    assert kid.low < 0 and kid.method == "student t, 2 df" and range_of("mmd").scale == "real"
    vendi = mean_interval([1.0, 1.2, 1.5], bounds=range_of("vendi"))
    assert vendi.low >= 1.0 and "moved" in vendi.method  # 1.0 sits on the bound, moved inside it


def test_bounded_intervals_never_leave_their_range_random_cases():
    rng = np.random.default_rng(3)
    for name in ("coverage", "recall", "precision", "ms_ssim", "density", "fid", "high_quality"):
        bounds = range_of(name)
        for _ in range(50):
            top = 1.0 if math.isfinite(bounds.high) else 10.0
            x = rng.uniform(0, (bounds.high if math.isfinite(bounds.high) else top), size=rng.integers(2, 6))
            x[rng.random(x.size) < 0.2] = bounds.low  # some values on the bound
            iv = mean_interval(x, bounds=bounds, resolution=1e-4)
            if iv.n >= 2 and not math.isnan(iv.low):
                assert bounds.low <= iv.low <= iv.high <= bounds.high
    with pytest.raises(ValueError):
        mean_interval([0.5, 1.5], bounds=range_of("coverage"))


# ---------------------------------------------------------------- power (a priori)

def test_seeds_for_paired_power_matches_statsmodels_and_cohen():
    n, why = seeds_for_paired_power(sd_difference=0.002, smallest_difference=0.001, alpha=0.05, power=0.8)
    ref = TTestPower().solve_power(effect_size=0.5, alpha=0.05, power=0.8, alternative="two-sided")
    assert why == "" and n == math.ceil(ref) == 34  # Cohen's table: d = 0.5, paired, 80 %: 34 pairs
    # the power at the answer reaches 0.8 and one fewer pair does not
    assert TTestPower().power(effect_size=0.5, nobs=n, alpha=0.05) >= 0.8 > TTestPower().power(
        effect_size=0.5, nobs=n - 1, alpha=0.05)
    assert seeds_for_paired_power(1e-6, 1.0, 0.05)[0] == 2  # a huge effect: the fewest pairs with a df
    none, why = seeds_for_paired_power(0.0, 1.0, 0.05)
    assert none is None and "zero spread" in why
    assert seeds_for_paired_power(1.0, 1e-4, 0.05)[0] is None  # beyond the cap
    with pytest.raises(ValueError):
        seeds_for_paired_power(1.0, 0.0, 0.05)


def test_close_pair_with_three_seeds_is_not_separated():
    a, b = [0.80, 0.85, 0.75], [0.79, 0.84, 0.76]  # means 0.02 apart, spread 0.05
    [c] = adjust([compare(a, b, True)])
    assert c.verdict == "not separated"
    means = {"A": float(np.mean(a)), "B": float(np.mean(b))}
    sep = separated_pairs({("A", "B"): c})
    assert sep == set()
    assert best_or_tied(["A", "B"], means, True, sep) == {"A", "B"}
    letters = rank_groups(["A", "B"], means, True, sep)
    assert set(letters["A"]) & set(letters["B"]) and letters == {"A": "a", "B": "a"}


def test_ten_seeds_separate_what_three_do_not():
    z3 = np.array([-1.0, 0.0, 1.0])
    z10 = np.linspace(-1.0, 1.0, 10)
    z10 = (z10 - z10.mean()) / z10.std(ddof=1)  # sd 1 as well: d = 1 in both cases
    for z, verdict in ((z3, "not separated"), (z10, "B better")):
        a, b = 1.0 + 0.3 * z, 1.3 + 0.3 * z[::-1]
        [c] = adjust([compare(a, b, higher_is_better=True)])
        assert c.test == "welch" and c.verdict == verdict, (len(z), c.p_value)
    [lower] = adjust([compare(1.0 + 0.3 * z10, 1.3 + 0.3 * z10, higher_is_better=False)])
    assert lower.verdict == "A better"


def test_permutation_test_with_three_seeds_cannot_reach_005():
    def diff(x, y, axis):
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    res = st.permutation_test(([1.0, 2.0, 3.0], [10.0, 11.0, 12.0]), diff, vectorized=True,
                              permutation_type="independent", alternative="two-sided")
    assert math.comb(6, 3) == 20 == len(res.null_distribution)
    assert res.pvalue == pytest.approx(2 / 20)
    # the Welch test on the same samples does separate them
    assert compare([1.0, 2.0, 3.0], [10.0, 11.0, 12.0], False).p_value < 0.001


# ---------------------------------------------------------------- letters

def test_letters_non_transitive():
    means = {"A": 3.0, "B": 2.0, "C": 1.0}
    sep = {frozenset(("A", "C"))}
    assert rank_groups(["C", "A", "B"], means, True, sep) == {"A": "a", "B": "ab", "C": "b"}
    assert rank_groups(["A", "B", "C"], means, True, lambda x, y: {x, y} == {"A", "C"}) == \
        {"A": "a", "B": "ab", "C": "b"}
    assert best_or_tied(["A", "B", "C"], means, True, sep) == {"A", "B"}
    # lower is better: C is best and gets 'a'
    assert rank_groups(["A", "B", "C"], means, False, sep) == {"C": "a", "B": "ab", "A": "b"}


def test_letters_all_separated_and_none_separated():
    names = ["w", "x", "y", "z"]
    means = dict(zip(names, [4.0, 3.0, 2.0, 1.0]))
    all_sep = {frozenset(p) for p in itertools.combinations(names, 2)}
    assert rank_groups(names, means, True, all_sep) == {"w": "a", "x": "b", "y": "c", "z": "d"}
    assert rank_groups(names, means, True, set()) == dict.fromkeys(names, "a")
    assert best_or_tied(names, means, True, all_sep) == {"w"}
    assert rank_groups([], {}, True, set()) == {} and best_or_tied([], {}, True, set()) == set()


def _check_letters(names, means, sep, letters):
    best = max(names, key=lambda n: means[n])
    assert "a" in letters[best]
    for n in names:
        assert letters[n], n
    for x, y in itertools.combinations(names, 2):
        shares = bool(set(letters[x]) & set(letters[y]))
        assert shares == (frozenset((x, y)) not in sep), (x, y, letters)
    used = sorted(set("".join(letters.values())))
    assert "".join(used) == "abcdefghijklmnopqrstuvwxyz"[:len(used)]
    for drop in used:  # no redundant letter: dropping any one breaks a row or a pair
        rest = {n: set(v) - {drop} for n, v in letters.items()}
        ok = all(rest.values()) and all(
            bool(rest[x] & rest[y]) for x, y in itertools.combinations(names, 2)
            if frozenset((x, y)) not in sep)
        assert not ok, (drop, letters)


def test_letters_redundant_clique_is_swept():
    # 1, 2, 3 are mutually tied, and each pair of them is also tied with its own extra row:
    # the letter of {1, 2, 3} covers nothing the others do not, so it must not be kept.
    names = ["1", "2", "3", "x", "y", "z"]
    means = dict(zip(names, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]))
    tied = {frozenset(p) for p in [("1", "2"), ("2", "3"), ("1", "3"), ("1", "x"), ("2", "x"),
                                   ("2", "y"), ("3", "y"), ("1", "z"), ("3", "z")]}
    sep = {frozenset(p) for p in itertools.combinations(names, 2)} - tied
    letters = rank_groups(names, means, True, sep)
    _check_letters(names, means, sep, letters)
    assert len(set("".join(letters.values()))) == 3


def test_letters_random_graphs_brute_force():
    rng = np.random.default_rng(20040)
    for _ in range(200):
        k = int(rng.integers(1, 8))
        names = [f"m{i}" for i in range(k)]
        means = {n: float(v) for n, v in zip(names, rng.permutation(k))}
        sep = {frozenset(p) for p in itertools.combinations(names, 2) if rng.random() < 0.5}
        letters = rank_groups(names, means, True, sep)
        _check_letters(names, means, sep, letters)
        best = max(names, key=lambda n: means[n])
        assert best_or_tied(names, means, True, sep) == {best} | {
            n for n in names if frozenset((best, n)) not in sep}


# ---------------------------------------------------------------- hygiene

@pytest.mark.subprocess
def test_module_imports_no_models_metrics_or_benchmarks():
    code = ("import sys, gvae_bench.results.stats; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in (['gvae_bench', 'models'], "
            "['gvae_bench', 'metrics'], ['gvae_bench', 'benchmarks']) or m.split('.')[0] in "
            "('models', 'metrics', 'benchmarks', 'torch')]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_seeds_for_power_fall_as_the_effect_grows_where_scipys_noncentral_t_gives_nan():
    """Large effects (δ √n above about 15) make scipy's noncentral t return NaN; the power is then the
    integral over the variance estimate's chi-square, which agrees with statsmodels where both exist."""
    from statsmodels.stats.power import TTestPower

    from gvae_bench.results.power import _paired_power

    analysis = TTestPower()
    assert math.isnan(float(analysis.power(effect_size=10.0, nobs=3, alpha=0.05)))  # the case that misled
    for effect, n in [(2.0, 3), (1.0, 10), (5.0, 2), (0.5, 30)]:
        expected = float(analysis.power(effect_size=effect, nobs=n, alpha=0.05))
        analysis_nan = type("NaNPower", (), {"power": lambda self, **kw: float("nan")})()
        assert _paired_power(analysis_nan, effect, n, 0.05) == pytest.approx(expected, rel=1e-6)
    needed = [seeds_for_paired_power(1.0, effect, 0.00125)[0] for effect in (1.0, 2.0, 5.39, 8.05, 10.0, 43.3)]
    assert needed == sorted(needed, reverse=True)  # never more seeds for a larger effect
